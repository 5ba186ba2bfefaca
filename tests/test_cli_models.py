"""`autolog models list/show/alias/stage`, through click's CliRunner."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LinearRegression

import autolog
from autolog import models
from autolog.cli import main

X = np.arange(8, dtype=float).reshape(4, 2)


@pytest.fixture
def registered(tracking_dir):
    """'churn' with versions 1 and 2 (two runs), 'fraud' with version 1; their run ids."""
    client = autolog.Client()
    run_ids = []
    for slope in (1.0, 2.0):
        with autolog.start_run() as run:
            info = models.log_model("python_function", LinearRegression().fit(X, slope * X[:, 0]))
        autolog.register_model(info.model_uri, "churn")
        run_ids.append(run.info.run_id)
    autolog.register_model(info.model_uri, "fraud")
    client.update_registered_model("churn", "Predicts churn.\n\nSecond paragraph.")
    client.set_registered_model_tag("churn", "team", "risk")
    return run_ids


def invoke(tracking_dir, *args: str):
    return CliRunner().invoke(main, ["--store", str(tracking_dir), *args])


def test_models_list(tracking_dir, registered) -> None:
    autolog.Client().set_registered_model_alias("churn", "champion", 1)
    autolog.Client().transition_model_version_stage("churn", 2, "Production")
    out = invoke(tracking_dir, "models", "list")
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split() == ["name", "latest", "aliases", "stages", "updated", "description"]
    assert lines[2].split()[:5] == ["churn", "2", "champion:", "1", "Production:"]
    assert lines[2].endswith("Predicts churn.")
    assert lines[3].split()[:2] == ["fraud", "1"]
    assert lines[4] == f"2 registered models in {tracking_dir / 'autolog.db'}"
    assert len(lines) == 5

    out = invoke(tracking_dir, "models", "list", "--filter", "name LIKE 'fr%'", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert [m["name"] for m in data] == ["fraud"]
    assert data[0]["latest_versions"][0]["version"] == "1"
    out = invoke(tracking_dir, "models", "list", "--filter", "name = 'fraud'")
    assert out.output.splitlines()[-1] == f"1 registered model in {tracking_dir / 'autolog.db'}"


def test_models_list_empty_and_bad_filter(tracking_dir) -> None:
    autolog.Client().search_experiments()  # the store exists (a read never creates one)
    db = tracking_dir / "autolog.db"
    assert invoke(tracking_dir, "models", "list").output == f"No registered models in {db}.\n"
    out = invoke(tracking_dir, "models", "list", "--filter", "nme = 'x'")
    assert out.exit_code == 2
    assert out.output.startswith("Error: Invalid registered model filter at position 0 near 'nme'")


def test_models_show(tracking_dir, registered) -> None:
    autolog.Client().set_registered_model_alias("churn", "champion", 1)
    out = invoke(tracking_dir, "models", "show", "churn")
    assert out.exit_code == 0, out.output
    text = out.output
    assert text.startswith("Registered model churn\n")
    assert "Description:\n  Predicts churn.\n\n  Second paragraph.\n" in text
    assert "Tags:\n  team = risk\n" in text
    assert "Aliases:\n  @champion -> version 1\n" in text
    rows = text.split("Versions:\n", 1)[1].splitlines()
    assert rows[0].split() == [
        "version",
        "stage",
        "aliases",
        "created",
        "run_id",
        "source",
        "description",
    ]
    assert rows[2].split()[:2] == ["2", "None"]
    assert f"runs:/{registered[1]}/model" in rows[2]
    assert rows[3].split()[:3] == ["1", "None", "@champion"]
    assert registered[0] in rows[3]

    data = json.loads(invoke(tracking_dir, "models", "show", "churn", "--json").output)
    assert [v["version"] for v in data["versions"]] == ["2", "1"]
    assert data["aliases"] == {"champion": "1"}
    assert data["versions"][1]["run_id"] == registered[0]


def test_models_show_unknown_name(tracking_dir, registered) -> None:
    out = invoke(tracking_dir, "models", "show", "chrn")
    assert out.exit_code == 2
    assert out.output == (
        "Error: No registered model named 'chrn'; registered models: churn, fraud. Register one "
        "with autolog.register_model(model_uri, 'chrn').\n"
    )


def test_models_alias_set_move_delete(tracking_dir, registered) -> None:
    client = autolog.Client()
    out = invoke(tracking_dir, "models", "alias", "churn", "champion", "1")
    assert (out.exit_code, out.output) == (0, "churn@champion -> version 1\n")
    assert client.get_registered_model("churn").aliases == {"champion": "1"}
    out = invoke(tracking_dir, "models", "alias", "churn", "champion", "2")
    assert out.output == "churn@champion -> version 2\n"
    np.testing.assert_allclose(
        autolog.load_model("models:/churn@champion").predict(X), 2 * X[:, 0], atol=1e-9
    )
    out = invoke(tracking_dir, "models", "alias", "churn", "champion", "--delete")
    assert (out.exit_code, out.output) == (0, "Deleted alias @champion of churn\n")
    assert client.get_registered_model("churn").aliases == {}


@pytest.mark.parametrize(
    "args, message",
    [
        (("churn", "v2", "2"), "Error: Invalid alias 'v2': it looks like a version number"),
        (("churn", "champion", "7"), "Error: Registered model 'churn' has no version 7"),
        (("churn", "champion", "two"), "Error: Invalid model version 'two'"),
        (("churn", "champion"), "Error: Missing VERSION"),
        (("nope", "champion", "1"), "Error: No registered model named 'nope'"),
    ],
)
def test_models_alias_errors(tracking_dir, registered, args, message) -> None:
    out = invoke(tracking_dir, "models", "alias", *args)
    assert out.exit_code == 2
    assert out.output.startswith(message), out.output
    assert autolog.Client().get_registered_model("churn").aliases == {}


def test_models_stage_with_archive_existing(tracking_dir, registered) -> None:
    client = autolog.Client()
    out = invoke(tracking_dir, "models", "stage", "churn", "1", "production")
    assert (out.exit_code, out.output) == (0, "churn version 1 -> Production\n")
    out = invoke(tracking_dir, "models", "stage", "churn", "2", "Production", "--archive-existing")
    assert out.exit_code == 0, out.output
    assert out.output == "churn version 2 -> Production\nchurn version 1 -> Archived\n"
    assert [
        (v.version, v.current_stage) for v in client.search_model_versions("name = 'churn'")
    ] == [
        ("2", "Production"),
        ("1", "Archived"),
    ]


def test_models_stage_unknown_stage(tracking_dir, registered) -> None:
    out = invoke(tracking_dir, "models", "stage", "churn", "1", "Prod")
    assert out.exit_code == 2
    assert out.output == (
        "Error: Unknown stage 'Prod'; use one of None, Staging, Production, Archived "
        "(the string 'None' for no stage).\n"
    )
    assert autolog.Client().get_model_version("churn", 1).current_stage == "None"
