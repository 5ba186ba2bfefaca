"""The run page lists a run's datasets; a dataset's page lists the runs that used it."""

from __future__ import annotations

import numpy as np

import autolog
from autolog import data


def test_run_page_lists_datasets_and_dataset_page_lists_runs(client, store) -> None:
    train = data.from_numpy(np.ones((5, 2)), name="train-set")
    other = data.from_numpy(np.zeros((3, 2)), name="other")
    with autolog.start_run(run_name="uses-it") as first:
        autolog.log_input(train, context="training")
    with autolog.start_run(run_name="also-uses-it"):
        autolog.log_input(train, context="eval")
    with autolog.start_run(run_name="does-not"):
        autolog.log_input(other, context="training")

    page = client.get(f"/runs/{first.info.run_id}").text
    assert 'id="datasets-table"' in page
    assert f'<a href="/datasets/{train.digest}"><code>{train.digest}</code></a>' in page
    assert "<td>train-set</td>" in page and '<span class="chip">training</span>' in page
    assert '<td class="num">5</td>' in page and "in-memory numpy" in page

    page = client.get(f"/datasets/{train.digest}").text
    assert f'<code id="dataset-digest">{train.digest}</code>' in page
    assert ">uses-it</a>" in page and ">also-uses-it</a>" in page
    assert ">does-not</a>" not in page
    assert 'Runs that used it <span class="n">2</span>' in page

    missing = client.get("/datasets/nope'x")
    assert missing.status_code == 404
    assert "No dataset with digest" in missing.text
