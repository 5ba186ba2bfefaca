"""autolog.entities: MLflow's RunStatus and ViewType, with MLflow's values, usable in searches.

The expected integers are those of mlflow.entities in MLflow 3.17.2 (its protobuf enums):
RunStatus RUNNING=1, SCHEDULED=2, FINISHED=3, FAILED=4, KILLED=5; ViewType ACTIVE_ONLY=1,
DELETED_ONLY=2, ALL=3.
"""

from __future__ import annotations

import pytest

import autolog
from autolog.entities import Run, RunInfo, RunStatus, ViewType
from autolog.errors import InvalidValueError
from store import entities as store_entities


def test_run_status_values_and_conversions_are_mlflows():
    assert (
        RunStatus.RUNNING,
        RunStatus.SCHEDULED,
        RunStatus.FINISHED,
        RunStatus.FAILED,
        RunStatus.KILLED,
    ) == (1, 2, 3, 4, 5)
    assert RunStatus.all_status() == [1, 2, 3, 4, 5]
    assert [RunStatus.to_string(s) for s in RunStatus.all_status()] == [
        "RUNNING",
        "SCHEDULED",
        "FINISHED",
        "FAILED",
        "KILLED",
    ]
    assert RunStatus.from_string("KILLED") == 5
    assert [RunStatus.is_terminated(s) for s in RunStatus.all_status()] == [
        False,
        False,
        True,
        True,
        True,
    ]


def test_view_type_values_and_conversions_are_mlflows():
    assert (ViewType.ACTIVE_ONLY, ViewType.DELETED_ONLY, ViewType.ALL) == (1, 2, 3)
    assert [ViewType.to_string(v) for v in (1, 2, 3)] == ["active_only", "deleted_only", "all"]
    assert ViewType.from_string("deleted_only") == 2


def test_unknown_values_name_the_value_and_the_choices():
    with pytest.raises(InvalidValueError, match=r"run status 'DONE' is not known.*'FINISHED'"):
        RunStatus.from_string("DONE")
    with pytest.raises(InvalidValueError, match=r"run status 9 is not known"):
        RunStatus.to_string(9)
    with pytest.raises(InvalidValueError, match=r"view type 'every' is not known"):
        ViewType.from_string("every")
    with pytest.raises(InvalidValueError, match=r"view type 0 is not known.*ViewType.ALL \(3\)"):
        ViewType.to_string(0)
    with pytest.raises(InvalidValueError, match=r"view type 7 is not known"):
        autolog.search_runs(run_view_type=7)


def test_records_are_the_stores_own():
    assert Run is store_entities.Run and RunInfo is store_entities.RunInfo


def test_searches_take_view_type_and_status_reads_as_run_status_string():
    with autolog.start_run() as kept:
        pass
    with autolog.start_run() as gone:
        pass
    client = autolog.Client()
    client.delete_run(gone.info.run_id)

    def ids(view):
        return {
            r.info.run_id for r in autolog.search_runs(run_view_type=view, output_format="list")
        }

    assert ids(ViewType.ACTIVE_ONLY) == {kept.info.run_id}
    assert ids(ViewType.DELETED_ONLY) == {gone.info.run_id}
    assert ids(ViewType.ALL) == {kept.info.run_id, gone.info.run_id}
    assert ids(ViewType.ALL) == ids("ALL")
    experiment_ids = [e.experiment_id for e in client.search_experiments(ViewType.ALL)]
    assert kept.info.experiment_id in experiment_ids
    status = client.get_run(kept.info.run_id).info.status
    assert RunStatus.from_string(status) == RunStatus.FINISHED
