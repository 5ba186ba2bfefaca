"""End to end in a real headless Chromium (Debian's package, driven by Playwright).

The app runs in uvicorn on a free port in a thread; each page is saved as a screenshot in
test-artifacts/ui/. A page that logs a console error (a CSP violation included) fails its test.
"""

from __future__ import annotations

import math
import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from autolog.ui import create_app

CHROMIUM = os.environ.get("AUTOLOG_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"No Chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium) "
            "or point AUTOLOG_CHROMIUM at one; .ci/run installs it."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def server(store, demo):
    """The UI on 127.0.0.1:<free port>, serving this test's demo store."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(store, host="127.0.0.1", port=port)
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors
    yield pg
    context.close()
    assert errors == [], errors


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def rows(page) -> list[str]:
    return page.locator("#runs tbody td.name a").all_inner_texts()


def test_filter_runs_and_open_one(page, server, demo):
    page.goto(f"{server}/")
    shot(page, "experiments")
    page.get_by_role("link", name="iris", exact=True).click()
    page.wait_for_url(re.compile(rf"/experiments/{demo.experiment_id}$"))
    assert rows(page) == ["linear-d", "boost-c", "forest-b", "forest-a"]
    shot(page, "runs")

    # sort by a metric column, then filter with the search grammar
    page.locator("#runs thead a", has_text="accuracy").click()
    page.wait_for_url(re.compile(r"sort=metrics.accuracy"))
    assert rows(page) == ["forest-b", "boost-c", "forest-a", "linear-d"]
    page.fill("#filter", "params.model = 'forest' and metrics.accuracy > 0.8")
    page.press("#filter", "Enter")
    page.wait_for_url(re.compile(r"filter="))
    assert rows(page) == ["forest-b", "forest-a"]
    assert page.inner_text("#run-count") == "Runs 1–2 of 2"
    shot(page, "runs-filtered")

    page.fill("#filter", "metrics.accuracy >>> 1")
    page.press("#filter", "Enter")
    page.wait_for_selector("#filter-error")
    assert "position" in page.inner_text("#filter-error")
    page.errors.clear()  # the 400 response of that page is logged as a console error

    page.go_back()
    page.get_by_role("link", name="forest-a", exact=True).click()
    page.wait_for_url(re.compile(rf"/runs/{demo.runs['forest-a']}$"))
    assert page.inner_text("h1").startswith("forest-a")

    # every metric history is drawn: an SVG path through all 30 points
    chart = page.locator('.chart[data-key="loss"]')
    chart.scroll_into_view_if_needed()
    page.wait_for_selector('.chart[data-key="loss"].drawn path.series')
    d = chart.locator("path.series").get_attribute("d")
    assert d.startswith("M") and d.count("L") == 29
    # loss and val_loss are histories; accuracy, one value, is a table row and no chart
    expect(page.locator(".chart.drawn svg")).to_have_count(2)  # polled: CSP forbids eval
    assert page.locator("#single-metrics tr").all_inner_texts() == ["accuracy\t0.82"]
    box = chart.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    tip = chart.locator(".tip")
    assert tip.is_visible() and "step" in tip.inner_text()

    # artifacts: the first image is previewed; HTML in an empty sandbox; CSV as a table
    page.wait_for_selector("#artifact-preview img")
    assert page.eval_on_selector("#artifact-preview img", "i => i.complete && i.naturalWidth > 100")
    shot(page, "run")
    page.click('#artifact-tree a[data-artifact="report.html"]')
    frame = page.wait_for_selector("#artifact-preview iframe")
    assert frame.get_attribute("sandbox") == ""
    deadline = time.monotonic() + 10
    while not any("Blocked script execution" in e for e in page.errors):
        assert time.monotonic() < deadline, "the artifact's script was not blocked"
        page.wait_for_timeout(50)
    [blocked] = page.errors
    assert "report.html" in blocked and "sandboxed" in blocked
    page.errors.clear()
    assert page.title() == "forest-a · autolog"  # the artifact's script did not reach us
    page.click('#artifact-tree a[data-artifact="data/folds.csv"]')
    page.wait_for_selector("#artifact-preview table")
    assert page.locator("#artifact-preview tbody tr").count() == 3
    page.click('#artifact-tree a[data-artifact="notes.txt"]')
    page.wait_for_selector("#artifact-preview pre")
    assert page.inner_text("#artifact-preview pre") == "all good\nsecond line\n"
    assert "sepal length (cm)" in page.inner_text("#models")


def test_compare_two_runs(page, server, demo):
    page.goto(f"{server}/experiments/{demo.experiment_id}")
    button = page.locator("#compare-button")
    assert button.is_disabled()
    page.check(f'input[value="{demo.runs["forest-a"]}"]')
    page.check(f'input[value="{demo.runs["boost-c"]}"]')
    assert button.is_enabled() and button.inner_text() == "Compare 2 selected"
    button.click()
    page.wait_for_url(re.compile(r"/compare\?runs="))
    assert page.inner_text("h1") == "Comparing 2 runs"

    # overlaid curves: one path per run in each chart; accuracy (one value per run) only in
    # the table (polled outside the page: its CSP forbids eval)
    expect(page.locator(".chart.drawn svg")).to_have_count(2)
    for key in ("loss", "val_loss"):
        paths = page.locator(f'.chart[data-key="{key}"] path.series')
        assert paths.count() == 2
        assert {paths.nth(i).get_attribute("data-series") for i in range(2)} == {
            "forest-a",
            "boost-c",
        }
    # params diff, and the parallel-coordinates plot of params vs the chosen metric
    assert page.locator("#compare-params tr.differs").count() == 4
    lines = page.locator("#parallel-plot path.pc-line")
    assert lines.count() == 2
    assert page.locator("#parallel-plot .axis-title").all_text_contents() == [
        "learning_rate",
        "max_depth",
        "model",
        "n_estimators",
        "val_loss",  # the main metric: validation first
    ]
    page.select_option("#pc-metric", "loss")
    assert page.locator("#parallel-plot .axis-title").last.text_content() == "loss"
    shot(page, "compare")


def test_models_pages(page, server, demo):
    page.goto(f"{server}/models")
    assert "iris-classifier" in page.inner_text("#registered-models")
    shot(page, "models")
    page.click("text=iris-classifier")
    page.wait_for_url(re.compile(r"/models/iris-classifier$"))
    assert page.locator("#versions tbody tr").count() == 2
    assert "@champion" in page.inner_text("#versions")
    shot(page, "model")


def test_long_history_is_downsampled_in_the_chart(page, server, store, demo):
    rid = demo.runs["forest-b"]
    n = 200_000
    points = [
        ("long", math.sin(s / 9_000) + (3.0 if s == 150_000 else 0.0), 1, s) for s in range(n)
    ]
    store.log_batch(rid, metrics=points)
    page.goto(f"{server}/runs/{rid}")
    page.locator('.chart[data-key="long"]').scroll_into_view_if_needed()
    page.wait_for_selector('.chart[data-key="long"].drawn path.series')
    caption = page.inner_text('#metrics figure:has(.chart[data-key="long"]) figcaption')
    assert caption == "long\n200,000 points, downsampled"
    d = page.get_attribute('.chart[data-key="long"] path.series', "d")
    assert 100 < d.count("L") < 4_000

    # drag across the middle third of the plot: the server sends that step range only
    hit = page.locator('.chart[data-key="long"] rect.hit')
    box = hit.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 3, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, y, steps=5)
    page.mouse.up()
    page.wait_for_selector('.chart[data-key="long"].zoomed path.series')
    caption = page.inner_text('#metrics figure:has(.chart[data-key="long"]) figcaption')
    lo, hi = (int(x.replace(",", "")) for x in re.findall(r"steps ([\d,]+)–([\d,]+)", caption)[0])
    assert 60_000 < lo < 70_000 and 95_000 < hi < 105_000, caption
    assert "downsampled" in caption and "200,000" not in caption
    page.locator('.chart[data-key="long"]').screenshot(path=str(SHOTS / "chart-zoomed.png"))
    page.dblclick('.chart[data-key="long"] rect.hit')
    page.wait_for_selector('.chart[data-key="long"].drawn:not(.zoomed)')
    caption = page.inner_text('#metrics figure:has(.chart[data-key="long"]) figcaption')
    assert caption == "long\n200,000 points, downsampled"
    shot(page, "run-long-history")
