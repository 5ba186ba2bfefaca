"""Browser checks of issue 27's remaining UI items (Chromium through Playwright, one browser for
the module): the registry's search box and stage counts, deleted runs and their restore,
jump-to-page, the runs chart view, the run page and the compare page."""

from __future__ import annotations

from ui.test_browser import browser, page, server, shot  # noqa: F401  (shared fixtures)


def test_registry_search_and_stage_counts(page, server, store, demo):  # noqa: F811
    rid = demo.runs["forest-a"]
    store.create_model_version("iris-classifier", f"runs:/{rid}/model", rid)  # v3
    store.transition_model_version_stage("iris-classifier", 3, "Staging")
    store.transition_model_version_stage("iris-classifier", 1, "Production")
    store.create_registered_model("wine-regressor")
    page.goto(f"{server}/models")
    rows = page.locator("#registered-models tbody tr")
    assert rows.locator("td:first-child").all_inner_texts() == ["iris-classifier", "wine-regressor"]
    stages = rows.first.locator("td.stages .chip").all_inner_texts()
    assert [s.strip() for s in stages] == ["Production 1: v1", "Staging 2: v3, v2"]
    page.click('#registered-models .chip[data-stage="Staging"] a:text("v2")')
    page.wait_for_url(f"{server}/models/iris-classifier/versions/2")

    page.goto(f"{server}/models")
    page.fill("#model-search", "WINE")
    page.press("#model-search", "Enter")
    page.wait_for_url(f"{server}/models?q=WINE")
    assert rows.locator("td:first-child").all_inner_texts() == ["wine-regressor"]
    page.fill("#model-search", "nothing-like-this")
    page.press("#model-search", "Enter")
    assert page.inner_text("#no-model-match") == "No registered model matches nothing-like-this."
    page.goto(f"{server}/models?q=name%20%3D%20%27iris-classifier%27")  # the filter grammar
    assert rows.locator("td:first-child").all_inner_texts() == ["iris-classifier"]
    shot(page, "models-search")
    page.goto(f"{server}/models/iris-classifier")
    assert page.inner_text("#model-stages") == "Production 1: v1 Staging 2: v3, v2"
