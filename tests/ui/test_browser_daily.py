"""Browser checks of issue 27's UI: column chooser state across a reload, nested child rows,
the model version page, dark mode (Chromium through Playwright, as test_browser.py)."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from ui.test_browser import browser, page, server, shot  # noqa: F401  (shared fixtures)


def _header_cols(pg) -> list[str]:
    return pg.eval_on_selector_all(
        "#runs thead tr:last-child th[data-col]:not([hidden])", "els => els.map(e => e.dataset.col)"
    )


def test_column_chooser_survives_a_reload(page, server, demo):  # noqa: F811
    page.goto(f"{server}/experiments/{demo.experiment_id}")
    assert _header_cols(page)[:4] == ["status", "created", "duration", "integration"]
    page.click("#column-chooser summary")
    page.uncheck('#column-list li[data-col="duration"] input')
    page.click('#column-list li[data-col="metrics.accuracy"] button:text("Pin")')
    expected = ["metrics.accuracy", "status", "created", "integration"]
    assert _header_cols(page)[:4] == expected
    page.reload()
    assert _header_cols(page)[:4] == expected
    assert "duration" not in _header_cols(page)
    first = page.locator("#runs tbody tr").first
    cells = first.locator("td[data-col]:not([hidden])").evaluate_all(
        "els => els.map(e => e.dataset.col)"
    )
    assert cells[:2] == ["metrics.accuracy", "status"]
    shot(page, "runs-columns")


def test_children_are_collapsed_under_their_parent(page, server, store, demo):  # noqa: F811
    eid = demo.experiment_id
    parent = store.create_run(eid, run_name="GridSearchCV-91bc")
    pid = parent.info.run_id
    for name, score in (("c-low", 0.5), ("c-high", 0.9), ("c-mid", 0.7)):
        rid = store.create_run(eid, run_name=name, parent_run_id=pid).info.run_id
        store.log_batch(rid, metrics=[("val_score", score, 0, 0)])
    page.goto(f"{server}/experiments/{eid}")
    children = page.locator(f'#runs tr.child-row[data-parent="{pid}"]')
    assert children.count() == 3
    assert all(children.nth(i).is_hidden() for i in range(3))
    page.click(f'button.expand[data-run="{pid}"]')
    names = children.locator("td.name a").all_inner_texts()
    assert names == ["c-high", "c-mid", "c-low"]  # best val_score first
    assert all(children.nth(i).is_visible() for i in range(3))
    assert page.inner_text("#run-count") == "Runs 1–5 of 5"
    shot(page, "runs-nested")


def test_model_version_page(page, server, demo):  # noqa: F811
    page.goto(f"{server}/models/iris-classifier")
    assert "@champion" in page.inner_text("section.overview pre.code")
    page.click("#versions a[href$='/versions/1']")
    page.wait_for_url(re.compile(r"/models/iris-classifier/versions/1$"))
    assert page.inner_text("#load-code").splitlines()[2] == (
        'model = autolog.load_model("models:/iris-classifier@champion")'
    )
    assert "python_function" in page.inner_text("#flavors")
    assert page.inner_text("#source-run") == "forest-a"
    assert "accuracy" in page.inner_text("#version-metrics")
    assert page.locator("#version-files tr").count() >= 2
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    copy = page.locator("pre:has(#load-code) + button.copy")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == page.inner_text("#load-code")
    shot(page, "model-version")


def test_dark_mode_follows_the_system(browser, server, demo):  # noqa: F811
    context = browser.new_context(color_scheme="dark")
    pg = context.new_page()
    pg.goto(f"{server}/experiments/{demo.experiment_id}")
    bg = pg.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(15, 20, 26)"
    context.close()
    light = browser.new_context(color_scheme="light")
    pg = light.new_page()
    pg.goto(f"{server}/")
    assert pg.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(245, 246, 248)"
    light.close()
