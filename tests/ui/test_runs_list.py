"""The runs list's server side: a filtered search's page before its count, the count API."""

from __future__ import annotations


def test_filtered_page_defers_its_count(client, demo):
    eid = demo.experiment_id
    flt = "params.model = 'forest' or params.model = 'boost'"
    html = client.get(f"/experiments/{eid}", params={"filter": flt, "per_page": 2}).text
    assert 'Runs 1–2 of <span id="run-total" data-url="/api/runs/count?filter=' in html
    assert '<span id="page-total">…</span>' in html
    body = client.get("/api/runs/count", params={"filter": flt, "experiment_id": eid}).json()
    assert body == {"total": 3}
    # a search whose matches fit on the page is counted at once
    html = client.get(f"/experiments/{eid}", params={"filter": flt}).text
    assert "Runs 1–3 of 3</span>" in html
    # unfiltered pages are counted on the server (one indexed count)
    html = client.get(f"/experiments/{eid}", params={"per_page": 2}).text
    assert "Runs 1–2 of 4</span>" in html
    assert client.get("/api/runs/count", params={"deleted": "1"}).json() == {"total": 0}
    bad = client.get("/api/runs/count", params={"filter": "metrics.x >>> 1"})
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_a_parent_unfolds_its_best_ten_children(client, store, demo):
    eid = demo.experiment_id
    pid = store.create_run(eid, run_name="search").info.run_id
    for i in range(12):
        rid = store.create_run(eid, run_name=f"cand-{i:02d}", parent_run_id=pid).info.run_id
        store.log_batch(rid, metrics=[("val_score", i / 100, 0, 0)])
    html = client.get(f"/experiments/{eid}").text
    shown = [f"cand-{i:02d}" for i in range(12) if f">cand-{i:02d}</a>" in html]
    assert shown == [f"cand-{i:02d}" for i in range(2, 12)]  # the best ten by val_score
    assert html.count(f'class="child-row" data-parent="{pid}"') == 10
    assert (
        f'<a href="/runs/{pid}#children">All 12 child runs, ranked, on the parent\'s page</a>'
        " (2 more)" in html
    )
    # the default columns are the metrics the page's rows share, not the 10 children's val_score
    assert 'data-default-metrics="val_loss\naccuracy\nloss"' in html
