"""Browser checks of issue 27's remaining UI items (Chromium through Playwright, one browser for
the module): the registry's search box and stage counts, deleted runs and their restore,
jump-to-page, the runs chart view, the run page and the compare page."""

from __future__ import annotations

import re

from playwright.sync_api import expect
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


def test_deleted_runs_view_restores_a_run(page, server, store, demo):  # noqa: F811
    eid = demo.experiment_id
    gone = demo.runs["forest-b"]
    store.delete_run(gone)
    page.goto(f"{server}/experiments/{eid}")
    assert page.inner_text("#run-count") == "Runs 1–3 of 3"
    page.click("#deleted-runs")
    page.wait_for_url(f"{server}/experiments/{eid}?deleted=1")
    assert page.inner_text("#run-count") == "Deleted runs 1–1 of 1"
    assert page.locator("#runs tbody td.name a").all_inner_texts() == ["forest-b"]
    page.click(f'button.restore[data-run="{gone}"]')
    page.wait_for_selector(f'tr.restored[data-run-id="{gone}"]')
    assert page.inner_text(f'button.restore[data-run="{gone}"]') == "Restored"
    assert store.get_run(gone).info.lifecycle_stage == "active"
    page.reload()
    assert page.inner_text("p.empty") == "No deleted runs."
    page.click("#active-runs")
    assert page.inner_text("#run-count") == "Runs 1–4 of 4"
    # another site's page cannot restore: its request lacks the header this UI's pages send
    store.delete_run(gone)
    status = page.evaluate(
        f"fetch('/api/runs/{gone}/restore', {{method: 'POST'}}).then(r => r.status)"
    )
    assert status == 403 and store.get_run(gone).info.lifecycle_stage == "deleted"
    assert page.errors == [
        "Failed to load resource: the server responded with a status of 403 (Forbidden)"
    ]
    page.errors.clear()
    # a deleted run's own page restores it too
    page.goto(f"{server}/runs/{gone}")
    page.click(f'h1 button.restore[data-run="{gone}"]')
    expect(page.locator("h1 button.restore")).to_have_text("Restored")
    assert store.get_run(gone).info.lifecycle_stage == "active"


def test_jump_to_page(page, server, demo):  # noqa: F811
    page.goto(
        f"{server}/experiments/{demo.experiment_id}?per_page=1&sort=attributes.run_name&dir=asc"
    )
    assert page.inner_text("#run-count") == "Runs 1–1 of 4"
    page.fill("#jump-page", "3")
    page.press("#jump-page", "Enter")
    page.wait_for_url("**page=3**")
    assert page.inner_text("#run-count") == "Runs 3–3 of 4"
    assert page.locator("#runs tbody td.name a").all_inner_texts() == ["forest-b"]
    assert page.input_value("#jump-page") == "3"
    page.goto(f"{server}/experiments/{demo.experiment_id}?per_page=1&page=99")
    assert page.inner_text("#run-count") == "Runs 4–4 of 4"  # past the end: the last page


def test_chart_view_of_the_runs(page, server, demo):  # noqa: F811
    page.goto(f"{server}/experiments/{demo.experiment_id}")
    page.click("#chart-view")
    page.wait_for_url("**view=chart")
    page.select_option("#chart-metric", "accuracy")
    bars = page.locator("#runs-chart-plot rect.bar")
    titles = [bars.nth(i).locator("title").text_content() for i in range(bars.count())]
    assert titles == [  # accuracy = 1 - scale / 5, best first
        "forest-b: accuracy = 0.9",
        "boost-c: accuracy = 0.86",
        "forest-a: accuracy = 0.82",
        "linear-d: accuracy = 0.74",
    ]
    assert page.inner_text("#runs-chart-count") == "4 of 4 runs on this page with accuracy."
    page.select_option("#chart-kind", "scatter")
    page.select_option("#chart-param", "max_depth")
    dots = page.locator("#runs-chart-plot circle.pt")
    assert sorted(dots.nth(i).locator("title").text_content() for i in range(dots.count())) == [
        "boost-c: max_depth = 4, accuracy = 0.86",
        "forest-a: max_depth = 3, accuracy = 0.82",
        "forest-b: max_depth = 8, accuracy = 0.9",
    ]
    xs = {
        dots.nth(i).get_attribute("data-run"): float(dots.nth(i).get_attribute("cx"))
        for i in range(3)
    }
    assert xs[demo.runs["forest-a"]] < xs[demo.runs["boost-c"]] < xs[demo.runs["forest-b"]]
    assert "linear-d" not in page.inner_text("#runs-chart-count")
    assert page.inner_text("#runs-chart-count") == (
        "3 of 4 runs on this page with accuracy and max_depth."
    )
    shot(page, "runs-chart")


def _ema(values: list[float], w: float) -> float:
    last = 0.0
    for v in values:
        last = last * w + (1 - w) * v
    return last / (1 - w ** len(values))


def test_run_page_items(page, server, store, demo):  # noqa: F811
    import numpy as np

    import autolog
    from autolog import data as datasets

    eid = demo.experiment_id
    train = datasets.from_numpy(np.ones((5, 2)), name="train-set")
    with autolog.start_run(run_name="search", experiment_id=eid) as parent:
        autolog.log_input(train, context="training")
        autolog.set_tag(
            "mlflow.note.content",
            "# Grid search\n\nTried **three** alphas. <script>alert(1)</script> "
            "[docs](https://example.org) [bad](javascript:alert(1))",
        )
    pid = parent.info.run_id
    t0 = 1_700_000_000_000
    values = [1.0, 0.5, 0.4, 0.2, 0.3]
    store.log_batch(
        pid,
        metrics=[("loss", v, t0 + 2000 * i, i) for i, v in enumerate(values)]
        + [("acc", 0.5 + i / 10, t0 + 2000 * i, i) for i in range(5)]
        + [("best_score", 0.93, t0, 0), ("stopped_iteration", 4, t0, 0)],
    )
    for name, alpha, score in (("a-01", 0.1, 0.8), ("a-1", 1.0, 0.93), ("a-10", 10.0, 0.6)):
        with autolog.start_run(run_name=name, experiment_id=eid, parent_run_id=pid) as child:
            autolog.log_params({"alpha": alpha, "solver": "lbfgs"})
            autolog.log_metric("val_score", score)
        assert child.info.parent_run_id == pid

    page.goto(f"{server}/runs/{pid}")
    # single values in a table, histories charted
    assert page.locator("#single-metrics th").all_inner_texts() == [
        "best_score",
        "stopped_iteration",
    ]
    assert page.locator("#single-metrics td").all_inner_texts() == ["0.93", "4"]
    assert page.locator(".charts .chart").evaluate_all("els => els.map(e => e.dataset.key)") == [
        "acc",
        "loss",
    ]
    # children ranked by the metric they share, with the param that differs
    rows = page.locator("#children-table tbody tr")
    assert [rows.nth(i).locator("td").all_inner_texts() for i in range(3)] == [
        ["1", "a-1", "0.93", "1.0", "FINISHED"],
        ["2", "a-01", "0.8", "0.1", "FINISHED"],
        ["3", "a-10", "0.6", "10.0", "FINISHED"],
    ]
    assert page.locator("#children-table thead th").all_inner_texts() == [
        "Rank", "Run", "val_score", "alpha", "Status"
    ]  # fmt: skip
    # the description as Markdown, raw HTML shown as text, the javascript: link dropped
    assert page.inner_text("#description h1") == "Grid search"
    assert page.inner_text("#description strong") == "three"
    assert "<script>alert(1)</script>" in page.inner_text("#description")
    assert page.locator("#description a").evaluate_all("els => els.map(a => a.href)") == [
        "https://example.org/"
    ]
    assert page.get_attribute("#overview-datasets a", "href") == f"/datasets/{train.digest}"
    assert page.inner_text("#overview-datasets") == "train-set (training)"

    # x axis: wall time and relative time come from the points' timestamps
    loss = page.locator('.chart[data-key="loss"]')
    loss.scroll_into_view_if_needed()
    page.wait_for_selector('.chart[data-key="loss"].drawn path.series')
    page.select_option("#x-axis", "relative")
    assert loss.get_attribute("data-x-mode") == "relative"
    assert loss.locator(".axis text").last.text_content() == "seconds"
    ticks = loss.locator(".axis text[text-anchor=middle]").all_text_contents()
    assert ticks[0] == "0" and ticks[-1] == "8"  # 5 points 2 s apart
    page.select_option("#x-axis", "wall")
    assert loss.locator(".axis text").last.text_content() == "time"
    ticks = loss.locator(".axis text[text-anchor=middle]").all_text_contents()
    assert len(set(ticks)) == len(ticks) and all(re.fullmatch(r"\d\d:\d\d:\d\d", t) for t in ticks)
    # smoothing: the debiased moving average, the raw line kept faint
    page.fill("#smoothing", "0.6")
    assert loss.get_attribute("data-smoothed-last") == f"{_ema(values, 0.6):.5g}"
    assert loss.locator("path.raw").count() == 1
    # two metrics on one chart
    page.check('input.together[value="loss"]')
    page.check('input.together[value="acc"]')
    page.click("#plot-together")
    page.wait_for_selector("#together-chart.drawn path.series")
    series = page.locator("#together-chart path.series")
    assert series.evaluate_all("els => els.map(e => e.dataset.series)") == ["acc", "loss"]
    shot(page, "run-items")


def test_compare_page(page, server, store, demo):  # noqa: F811
    eid = store.create_experiment("search")
    long_name = "max_leaf_nodes_per_tree_in_ensemble"
    specs = [
        ("lr-small", 0.001, "stochastic_gradient_descent_with_momentum", 0.7, 31),
        ("lr-mid", 0.01, "adam", 0.8, 63),
        ("lr-big", 0.1, "adam", 0.9, 127),
    ]
    ids = []
    for name, lr, opt, acc, leaves in specs:
        rid = store.create_run(eid, run_name=name).info.run_id
        params = {"learning_rate": lr, "optimizer": opt, long_name: leaves, "seed": 0}
        store.log_batch(rid, metrics=[("val_acc", acc, 0, 0), ("train_loss", 1 - acc, 0, 0)],
                        params=params)  # fmt: skip
        ids.append(rid)
    page.goto(f"{server}/compare?runs={','.join(ids)}")
    params = page.locator("#compare-params tbody tr")
    assert [params.nth(i).inner_text().split("\t") for i in range(params.count())] == [
        ["learning_rate", "0.001", "0.01", "0.1"],
        [long_name, "31", "63", "127"],
        ["optimizer", "stochastic_gradient_descent_with_momentum", "adam", "adam"],
        ["seed", "0", "0", "0"],
    ]
    metrics = page.locator("#compare-metrics tbody tr")
    assert [metrics.nth(i).inner_text().split("\t") for i in range(metrics.count())] == [
        ["train_loss", "0.3", "0.2", "0.1"],
        ["val_acc", "0.7", "0.8", "0.9"],
    ]
    # parameter names stay whole: one line each
    head = page.locator(f'#compare-params tbody th:text("{long_name}")')
    assert head.evaluate("e => getComputedStyle(e).whiteSpace") == "nowrap"
    assert head.bounding_box()["height"] < 2 * float(
        head.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)")
    )
    # parallel coordinates: the main metric by default, log axis, lines coloured by the metric
    assert page.input_value("#pc-metric") == "val_acc"
    titles = page.locator("#parallel-plot .axis-title").all_text_contents()
    assert titles == ["learning_rate (log)", long_name, "optimizer", "val_acc"]
    lr_axis = page.locator('#parallel-plot g.axis[data-axis="learning_rate"] text.tick')
    assert lr_axis.all_text_contents() == ["0.001", "0.01", "0.1"]
    opt_axis = page.locator('#parallel-plot g.axis[data-axis="optimizer"] text.tick')
    first_text = "els => els.map(e => e.firstChild.textContent)"
    assert opt_axis.evaluate_all(first_text) == ["adam", "stochastic_gradient_des…"]
    assert opt_axis.last.locator("title").text_content() == specs[0][2]
    strokes = {
        p.get_attribute("data-value"): p.get_attribute("stroke")
        for p in page.locator("#parallel-plot path.pc-line").all()
    }
    assert strokes == {
        "0.7": "rgb(68, 1, 84)",
        "0.8": "rgb(33, 145, 140)",
        "0.9": "rgb(253, 231, 37)",
    }
    assert page.inner_text("#pc-color-bar .lo") == "0.7"
    assert page.inner_text("#pc-color-bar .hi") == "0.9"
    # the scatter of one param against one metric
    page.select_option("#scatter-param", "learning_rate")
    dots = page.locator("#scatter-plot circle.pt")
    assert sorted(d.locator("title").text_content() for d in dots.all()) == [
        "lr-big: learning_rate = 0.1, val_acc = 0.9",
        "lr-mid: learning_rate = 0.01, val_acc = 0.8",
        "lr-small: learning_rate = 0.001, val_acc = 0.7",
    ]
    xs = [float(d.get_attribute("cx")) for d in dots.all()]
    assert abs((xs[1] - xs[0]) - (xs[2] - xs[1])) < 0.5  # log scale: evenly spaced decades
    page.select_option("#scatter-metric", "train_loss")
    assert "train_loss = 0.3" in page.locator("#scatter-plot circle.pt title").first.text_content()
    shot(page, "compare-search")


def test_a_filtered_search_is_counted_after_its_page(page, server, demo):  # noqa: F811
    flt = "params.model = 'forest' or params.model = 'boost'"
    page.goto(f"{server}/experiments/{demo.experiment_id}?per_page=2&filter={flt}")
    assert page.locator("#runs tbody td.name a").count() == 2
    expect(page.locator("#run-count")).to_have_text("Runs 1–2 of 3")  # the count came after
    expect(page.locator("#page-total")).to_have_text("2")
    assert page.get_attribute("#jump-page", "max") == "2"
    page.click("#last-page")
    page.wait_for_url("**page=2**")
    assert page.inner_text("#run-count") == "Runs 3–3 of 3"  # the last page counts itself
    page.goto(f"{server}/experiments/{demo.experiment_id}?per_page=2&page=9&filter={flt}")
    assert page.inner_text("#run-count") == "Runs 3–3 of 3"  # past the end: the last page
