"""Model registry: versions, aliases, stages, descriptions, tags, lineage, URIs, search, errors."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

import autolog
from autolog import models, registry
from autolog.errors import (
    InvalidValueError,
    ModelLoadError,
    RegisteredModelExistsError,
    RegisteredModelNotFoundError,
    RegistryError,
    RegistryValueError,
    RunNotFoundError,
    SearchSyntaxError,
)
from autolog.registry import ModelVersion, RegisteredModel

ROOT = Path(__file__).resolve().parents[1]
X = np.arange(24, dtype=float).reshape(12, 2)


def _log(slope: float = 1.0) -> models.ModelInfo:
    """Log a LinearRegression predicting slope * (x0 + x1) in a fresh run; return its ModelInfo."""
    y = slope * X.sum(axis=1)
    with autolog.start_run():
        return models.log_model("python_function", LinearRegression().fit(X, y))


@pytest.fixture
def client():
    return autolog.Client()


@pytest.fixture
def three(client):
    """Model 'm' with versions 1..3 from three runs (slopes 1, 2, 3)."""
    infos = [_log(s) for s in (1.0, 2.0, 3.0)]
    for info in infos:
        autolog.register_model(info.model_uri, "m")
    return infos


# -- registering -----------------------------------------------------------------------------


def test_register_model_numbers_versions_and_records_lineage(client):
    info = _log()
    mv = autolog.register_model(info.model_uri, "churn", tags={"data": "march"})
    assert isinstance(mv, ModelVersion)
    assert (mv.name, mv.version, mv.status, mv.current_stage) == ("churn", "1", "READY", "None")
    assert mv.source == f"runs:/{info.run_id}/model"
    assert mv.run_id == info.run_id
    assert mv.storage_location == str(info.path)
    assert (Path(mv.storage_location) / "MLmodel").is_file()
    assert mv.tags == {"data": "march"}
    assert mv.aliases == []
    assert mv.description is None
    assert mv.user_id
    assert mv.creation_timestamp == mv.last_updated_timestamp > 0

    mv2 = autolog.register_model(info.model_uri, "churn")
    assert mv2.version == "2"
    assert autolog.register_model(info.model_uri, "other").version == "1"

    rm = client.get_registered_model("churn")
    assert isinstance(rm, RegisteredModel)
    assert rm.name == "churn"
    assert [v.version for v in rm.latest_versions] == ["2"]  # newest per stage in use
    assert rm.aliases == {} and rm.tags == {}

    # a run lists the versions made from it
    made = client.get_model_versions_for_run(info.run_id)
    assert [(v.name, v.version) for v in made] == [("churn", "1"), ("churn", "2"), ("other", "1")]
    found = client.search_model_versions(f"run_id = '{info.run_id}'")
    assert sorted((v.name, v.version) for v in found) == [
        ("churn", "1"),
        ("churn", "2"),
        ("other", "1"),
    ]
    assert client.get_run(info.run_id).info.run_id == info.run_id  # runs are unaffected
    assert client.get_model_versions_for_run("no-such-run") == []


def test_log_model_with_registered_model_name_registers(client):
    with autolog.start_run():
        info = models.log_model(
            "python_function", LinearRegression().fit(X, X.sum(1)), registered_model_name="lm"
        )
    assert info.registered_model_version.version == "1"
    assert client.get_model_version("lm", 1).source == info.model_uri


def test_storage_location_is_kept_relative_to_the_store(store):
    info = _log()
    autolog.register_model(info.model_uri, "m")
    stored = store.conn.execute("SELECT storage_location FROM model_versions").fetchone()[0]
    assert stored == f"0/{info.run_id}/artifacts/model"


def test_register_a_local_directory_and_a_file_uri(tmp_path, client):
    model = LinearRegression().fit(X, X.sum(1))
    models.save_model("python_function", model, tmp_path / "dir")
    mv = autolog.register_model(str(tmp_path / "dir"), "local")
    assert (mv.source, mv.run_id, mv.storage_location) == (
        str(tmp_path / "dir"),
        None,
        str(tmp_path / "dir"),
    )
    mv2 = autolog.register_model((tmp_path / "dir").as_uri(), "local")
    assert mv2.source == (tmp_path / "dir").as_uri()
    assert mv2.storage_location == str(tmp_path / "dir")
    # registered from a directory, not a run: no recorded digest vouches for the pickle
    with pytest.raises(ModelLoadError, match="refusing to unpickle"):
        autolog.load_model("models:/local/2")
    loaded = autolog.load_model("models:/local/2", allow_pickle=True)
    np.testing.assert_allclose(loaded.predict(X), X.sum(1))


def test_register_refuses_what_is_not_a_model(tmp_path):
    info = _log()
    with pytest.raises(RegistryValueError, match="has no MLmodel file") as e:
        autolog.register_model(f"runs:/{info.run_id}/nothing-here", "m")
    assert f"runs:/{info.run_id}/nothing-here" in str(e.value)
    with pytest.raises(RunNotFoundError, match="no-such-run"):
        autolog.register_model("runs:/no-such-run/model", "m")
    with pytest.raises(RegistryValueError, match="has no MLmodel file"):
        autolog.register_model(str(tmp_path), "m")
    with pytest.raises(RegistryValueError, match="unsupported URI scheme"):
        autolog.register_model("s3://bucket/model", "m")
    with pytest.raises(RegistryValueError, match="expected runs:/<run_id>"):
        autolog.register_model("runs:/", "m")
    # nothing was created by the failed calls
    assert autolog.Client().search_registered_models() == []


def test_copy_model_version_keeps_lineage(client, three):
    mv = client.copy_model_version("models:/m/2", "m-prod")
    assert (mv.name, mv.version) == ("m-prod", "1")
    assert mv.run_id == three[1].run_id
    assert mv.source == three[1].model_uri
    np.testing.assert_allclose(autolog.load_model("models:/m-prod/1").predict(X), 2 * X.sum(1))
    mv = autolog.register_model("models:/m/latest", "m-prod")
    assert (mv.version, mv.run_id) == ("2", three[2].run_id)


def test_create_registered_model_then_versions(client):
    rm = client.create_registered_model("empty", tags={"team": "risk"}, description="# Risk")
    assert (rm.name, rm.tags, rm.description, rm.latest_versions) == (
        "empty",
        {"team": "risk"},
        "# Risk",
        [],
    )
    with pytest.raises(RegisteredModelExistsError, match="'empty' already exists"):
        client.create_registered_model("empty")
    info = _log()
    mv = client.create_model_version("empty", info.model_uri, tags={"k": "v"}, description="d")
    assert (mv.version, mv.run_id, mv.tags, mv.description) == ("1", info.run_id, {"k": "v"}, "d")
    with pytest.raises(RegisteredModelNotFoundError, match="No registered model named 'absent'"):
        client.create_model_version("absent", info.model_uri)


def _register_in_subprocesses(folder: Path, model_uri: str, n: int) -> list[int]:
    """n fresh processes register model_uri as 'race' at the same moment; their versions."""
    script = (
        "import os, sys, time\n"
        "import autolog\n"
        "autolog.set_tracking_uri(sys.argv[1])\n"
        "autolog.Client().get_registered_model  # warm imports before the start line\n"
        "from autolog import tracking; tracking._store().conn\n"
        "open(sys.argv[3] + '.ready', 'w').close()\n"
        "while not os.path.exists(sys.argv[4]): time.sleep(0.002)\n"
        "print(autolog.register_model(sys.argv[2], 'race').version)\n"
    )
    go = folder / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(folder), model_uri, str(folder / f"p{i}"), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(n)
    ]
    deadline = time.monotonic() + 60
    while len(list(folder.glob("p*.ready"))) < n:
        assert time.monotonic() < deadline, "workers did not start"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    go.touch()
    versions = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        versions.append(int(out.strip()))
    return versions


def test_eight_processes_registering_one_name_get_versions_1_to_8(tracking_dir, client):
    info = _log()
    versions = _register_in_subprocesses(tracking_dir, info.model_uri, 8)
    assert sorted(versions) == [1, 2, 3, 4, 5, 6, 7, 8]
    stored = client.search_model_versions("name = 'race'", order_by=["version_number"])
    assert [v.version for v in stored] == [str(i) for i in range(1, 9)]
    assert autolog.register_model(info.model_uri, "race").version == "9"


# -- aliases ---------------------------------------------------------------------------------


def test_aliases_set_move_resolve_delete(client, three):
    client.set_registered_model_alias("m", "champion", 1)
    client.set_registered_model_alias("m", "challenger", "3")
    assert client.get_registered_model("m").aliases == {"challenger": "3", "champion": "1"}
    assert client.get_model_version_by_alias("m", "champion").version == "1"
    assert client.get_model_version("m", 1).aliases == ["champion"]
    np.testing.assert_allclose(autolog.load_model("models:/m@champion").predict(X), X.sum(1))

    client.set_registered_model_alias("m", "champion", 2)  # moving an alias
    assert client.get_model_version("m", 1).aliases == []
    assert client.get_model_version("m", 2).aliases == ["champion"]
    np.testing.assert_allclose(autolog.load_model("models:/m@champion").predict(X), 2 * X.sum(1))

    client.delete_registered_model_alias("m", "challenger")
    assert client.get_registered_model("m").aliases == {"champion": "2"}
    with pytest.raises(RegisteredModelNotFoundError) as e:
        client.get_model_version_by_alias("m", "challenger")
    assert str(e.value) == (
        "Registered model 'm' has no alias 'challenger'; its aliases: champion -> version 2. "
        "Set it with Client().set_registered_model_alias('m', 'challenger', <version>)."
    )
    with pytest.raises(RegisteredModelNotFoundError, match="has no alias 'challenger'"):
        client.delete_registered_model_alias("m", "challenger")
    with pytest.raises(
        RegisteredModelNotFoundError, match="has no version 9; its versions: 1, 2, 3"
    ):
        client.set_registered_model_alias("m", "champion", 9)


def test_deleting_an_aliased_version_removes_its_aliases_and_tags(client, store, three):
    client.set_registered_model_alias("m", "champion", 3)
    client.set_registered_model_alias("m", "stable", 1)
    client.set_model_version_tag("m", 3, "validated", "yes")
    client.delete_model_version("m", 3)
    assert client.get_registered_model("m").aliases == {"stable": "1"}
    assert store.conn.execute(
        "SELECT COUNT(*) FROM registered_model_aliases WHERE alias = 'champion'"
    ).fetchone() == (0,)
    assert store.conn.execute("SELECT COUNT(*) FROM model_version_tags").fetchone() == (0,)
    with pytest.raises(RegisteredModelNotFoundError) as e:
        autolog.load_model("models:/m@champion")
    assert "has no alias 'champion'; its aliases: stable -> version 1" in str(e.value)
    with pytest.raises(RegisteredModelNotFoundError, match="has no version 3; its versions: 1, 2"):
        client.get_model_version("m", 3)
    # a deleted version's number is never given again
    assert autolog.register_model(three[0].model_uri, "m").version == "4"


@pytest.mark.parametrize("alias", ["3", "v3", "V12", "latest", "LATEST", "", "a b", "x@y", "a/b"])
def test_bad_aliases_are_refused(client, three, alias):
    with pytest.raises(RegistryValueError) as e:
        client.set_registered_model_alias("m", alias, 1)
    assert repr(alias) in str(e.value) or "'latest'" in str(e.value)
    assert isinstance(e.value, RegistryError) and isinstance(e.value, InvalidValueError)
    assert client.get_registered_model("m").aliases == {}


def test_version_like_alias_message_says_why(client, three):
    with pytest.raises(RegistryValueError) as e:
        client.set_registered_model_alias("m", "v3", 1)
    assert str(e.value) == (
        "Invalid alias 'v3': it looks like a version number, so models:/<name>@v3 would be "
        "ambiguous; choose a word such as 'champion' or 'candidate'."
    )


@pytest.mark.parametrize(
    "name", ["", "   ", "a/b", "a:b", "a@b", "x" * 257, " lead", "tab\there", None, 3]
)
def test_bad_model_names_are_refused(name):
    info = _log()
    with pytest.raises(RegistryValueError) as e:
        autolog.register_model(info.model_uri, name)  # type: ignore[arg-type]
    shown = repr(name[:40]) if isinstance(name, str) else repr(name)
    assert shown in str(e.value)
    assert autolog.Client().search_registered_models() == []


def test_name_with_spaces_dots_and_unicode_is_fine(client):
    info = _log()
    mv = autolog.register_model(info.model_uri, "Churn model v2.1 — ünïcode")
    assert mv.version == "1"
    path = registry.resolve_models_uri("models:/Churn model v2.1 — ünïcode/1")
    assert path == info.path


# -- stages ----------------------------------------------------------------------------------


def test_stage_transitions_and_archive_existing_versions(client, three):
    assert client.transition_model_version_stage("m", 1, "Production").current_stage == (
        "Production"
    )
    client.transition_model_version_stage("m", 2, "staging")  # case-insensitive
    mv = client.transition_model_version_stage("m", 3, "PRODUCTION", archive_existing_versions=True)
    assert mv.current_stage == "Production"
    stages = {v.version: v.current_stage for v in client.search_model_versions("name = 'm'")}
    assert stages == {"1": "Archived", "2": "Staging", "3": "Production"}

    # without the flag, two versions may share a stage
    client.transition_model_version_stage("m", 2, "Production")
    stages = {v.version: v.current_stage for v in client.search_model_versions("name = 'm'")}
    assert stages == {"1": "Archived", "2": "Production", "3": "Production"}
    assert [v.version for v in client.get_latest_versions("m", ["Production"])] == ["3"]
    assert [(v.version, v.current_stage) for v in client.get_latest_versions("m")] == [
        ("1", "Archived"),
        ("3", "Production"),
    ]
    assert [v.version for v in client.get_latest_versions("m", ["Staging"])] == []
    np.testing.assert_allclose(autolog.load_model("models:/m/Production").predict(X), 3 * X.sum(1))
    np.testing.assert_allclose(autolog.load_model("models:/m/archived").predict(X), X.sum(1))

    client.transition_model_version_stage("m", 3, "None")
    assert client.get_model_version("m", 3).current_stage == "None"


def test_unknown_stage_and_misused_archive_flag(client, three):
    with pytest.raises(RegistryValueError) as e:
        client.transition_model_version_stage("m", 1, "Prod")
    assert str(e.value) == (
        "Unknown stage 'Prod'; use one of None, Staging, Production, Archived "
        "(the string 'None' for no stage)."
    )
    with pytest.raises(RegistryValueError, match="only applies to Staging and Production"):
        client.transition_model_version_stage("m", 1, "Archived", archive_existing_versions=True)
    with pytest.raises(RegistryValueError, match="Unknown stage 'Dev'"):
        client.get_latest_versions("m", ["Dev"])
    assert {v.current_stage for v in client.search_model_versions()} == {"None"}


@pytest.mark.parametrize("version", [0, -1, "v1", "one", 1.5, True, None])
def test_bad_versions_are_refused(client, three, version):
    with pytest.raises(RegistryValueError, match="Invalid model version"):
        client.get_model_version("m", version)


# -- URIs ------------------------------------------------------------------------------------


def test_models_uris_resolve_to_the_right_directory(client, three):
    client.set_registered_model_alias("m", "champion", 1)
    client.transition_model_version_stage("m", 2, "Production")
    cases = {
        "models:/m/1": three[0],
        "models:/m/3": three[2],
        "models:/m@champion": three[0],
        "models:/m/Production": three[1],
        "models:/m/production": three[1],
        "models:/m/latest": three[2],
        "models:/m/3/": three[2],
    }
    for uri, info in cases.items():
        assert registry.resolve_models_uri(uri) == info.path, uri
    for uri, slope in (("models:/m/1", 1), ("models:/m/latest", 3), ("models:/m@champion", 1)):
        np.testing.assert_allclose(autolog.load_model(uri).predict(X), slope * X.sum(1))


def test_models_uri_errors_name_what_exists(client, three):
    client.set_registered_model_alias("m", "champion", 1)
    client.transition_model_version_stage("m", 2, "Staging")
    expected = {
        "models:/m/7": "Registered model 'm' has no version 7; its versions: 1, 2 (Staging), 3.",
        "models:/m@best": "Registered model 'm' has no alias 'best'; its aliases: champion -> "
        "version 1. Set it with Client().set_registered_model_alias('m', 'best', <version>).",
        "models:/m/Production": "Registered model 'm' has no version in stage 'Production'; "
        "its versions: 1, 2 (Staging), 3. Move one there with "
        "Client().transition_model_version_stage('m', <version>, 'Production').",
        "models:/n/1": "No registered model named 'n'; registered models: m. Register one with "
        "autolog.register_model(model_uri, 'n').",
    }
    for uri, message in expected.items():
        with pytest.raises(RegisteredModelNotFoundError) as e:
            autolog.load_model(uri)
        assert str(e.value) == message, uri


def test_latest_of_a_model_without_versions(client):
    client.create_registered_model("empty")
    with pytest.raises(RegisteredModelNotFoundError, match="'empty' has no versions"):
        registry.resolve_models_uri("models:/empty/latest")


def test_unknown_model_suggests_close_names_first(client):
    info = _log()
    for name in ("zeta", "alpha", "churn-model"):
        autolog.register_model(info.model_uri, name)
    with pytest.raises(RegisteredModelNotFoundError) as e:
        client.get_registered_model("churn_model")
    assert "registered models: churn-model, alpha, zeta." in str(e.value)


@pytest.mark.parametrize(
    "uri",
    ["models:/m", "models:/m/", "models:/m/v3", "models:/m/1/extra", "models:/@x", "models:/m@"],
)
def test_malformed_models_uris(three, uri):
    with pytest.raises(RegistryValueError, match=f"Invalid model URI '{uri}'"):
        registry.parse_models_uri(uri)
    with pytest.raises(RegistryValueError, match=f"Invalid model URI '{uri}'"):
        autolog.load_model(uri)


def test_parse_models_uri():
    with pytest.raises(RegistryValueError, match="Invalid model URI 'runs:/x'"):
        registry.parse_models_uri("runs:/x")
    assert registry.parse_models_uri("models:/m/12") == ("m", "version", 12)
    assert registry.parse_models_uri("models:/m@c-1") == ("m", "alias", "c-1")
    assert registry.parse_models_uri("models:/m/staging") == ("m", "stage", "Staging")
    assert registry.parse_models_uri("models:/m/Latest") == ("m", "latest", None)
    with pytest.raises(RegistryValueError, match="for an alias write models:/m@champ"):
        registry.parse_models_uri("models:/m/champ")
    with pytest.raises(RegistryValueError, match="a version is a plain number: models:/m/3"):
        registry.parse_models_uri("models:/m/v3")


# -- descriptions, tags, rename, delete ------------------------------------------------------


def test_descriptions_are_markdown_kept_exactly(client, three):
    text = "# Churn\n\n* trained on **March**\n* `AUC` 0.91 — see [run](runs:/x)\n"
    rm = client.update_registered_model("m", text)
    assert rm.description == text
    mv = client.update_model_version("m", "2", "Second *try*")
    assert mv.description == "Second *try*"
    assert client.get_model_version("m", 2).description == "Second *try*"
    assert client.get_registered_model("m").description == text
    assert client.update_registered_model("m", None).description is None
    with pytest.raises(RegistryValueError, match="give Markdown text as a string"):
        client.update_model_version("m", 1, 42)  # type: ignore[arg-type]


def test_tags_on_models_and_versions(client, three):
    client.set_registered_model_tag("m", "team", "risk")
    client.set_registered_model_tag("m", "n", 3)
    client.set_model_version_tag("m", 1, "validated", True)
    client.set_model_version_tag("m", "2", "validated", "no")
    assert client.get_registered_model("m").tags == {"team": "risk", "n": "3"}
    assert client.get_model_version("m", 1).tags == {"validated": "True"}
    client.delete_registered_model_tag("m", "n")
    client.delete_model_version_tag("m", 2, "validated")
    assert client.get_registered_model("m").tags == {"team": "risk"}
    assert client.get_model_version("m", 2).tags == {}
    client.transition_model_version_stage("m", 3, "Staging")
    client.set_model_version_tag("m", key="checked", value="1", stage="Staging")
    assert client.get_model_version("m", 3).tags == {"checked": "1"}
    with pytest.raises(RegistryValueError, match="Invalid tag key ''"):
        client.set_registered_model_tag("m", "", "x")
    with pytest.raises(RegisteredModelNotFoundError, match="has no version 5"):
        client.set_model_version_tag("m", 5, "k", "v")


def test_updates_move_last_updated_timestamp(client, three):
    before = client.get_model_version("m", 1).last_updated_timestamp
    time.sleep(0.005)
    client.set_model_version_tag("m", 1, "k", "v")
    after = client.get_model_version("m", 1)
    assert after.last_updated_timestamp > before
    assert after.creation_timestamp == before


def test_rename_carries_versions_aliases_and_tags(client, store, three):
    client.set_registered_model_alias("m", "champion", 2)
    client.set_registered_model_tag("m", "team", "risk")
    client.set_model_version_tag("m", 2, "k", "v")
    rm = client.rename_registered_model("m", "m2")
    assert (rm.name, rm.aliases, rm.tags) == ("m2", {"champion": "2"}, {"team": "risk"})
    assert client.get_model_version("m2", 2).tags == {"k": "v"}
    assert [v.version for v in client.search_model_versions("name = 'm2'")] == ["3", "2", "1"]
    np.testing.assert_allclose(autolog.load_model("models:/m2@champion").predict(X), 2 * X.sum(1))
    with pytest.raises(RegisteredModelNotFoundError, match="No registered model named 'm'"):
        client.get_registered_model("m")
    assert store.conn.execute(
        "SELECT COUNT(*) FROM model_versions WHERE name = 'm'"
    ).fetchone() == (0,)
    # the next version continues the numbering
    assert autolog.register_model(three[0].model_uri, "m2").version == "4"
    autolog.register_model(three[0].model_uri, "taken")
    with pytest.raises(RegisteredModelExistsError, match="Cannot rename 'm2' to 'taken'"):
        client.rename_registered_model("m2", "taken")
    with pytest.raises(RegistryValueError, match="'a/b'"):
        client.rename_registered_model("m2", "a/b")


def test_delete_registered_model_removes_everything_but_the_run(client, store, three):
    client.set_registered_model_alias("m", "champion", 1)
    client.set_model_version_tag("m", 1, "k", "v")
    client.set_registered_model_tag("m", "t", "v")
    client.delete_registered_model("m")
    for table in (
        "registered_models",
        "registered_model_tags",
        "model_versions",
        "model_version_tags",
        "registered_model_aliases",
    ):
        assert store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,), table
    assert (three[0].path / "MLmodel").is_file()
    with pytest.raises(RegisteredModelNotFoundError, match="the registry is empty"):
        client.delete_registered_model("m")
    # registering the name again starts over at 1
    assert autolog.register_model(three[0].model_uri, "m").version == "1"


def test_download_uri(client, three):
    assert client.get_model_version_download_uri("m", 2) == str(three[1].path)


# -- search ----------------------------------------------------------------------------------


def test_search_registered_models(client):
    info = _log()
    for name in ("churn-a", "churn-b", "Fraud", "zeta"):
        autolog.register_model(info.model_uri, name)
    client.set_registered_model_tag("churn-b", "team", "risk")
    client.set_registered_model_tag("Fraud", "team", "ops")

    def names(f=None, **kw):
        return [m.name for m in client.search_registered_models(f, **kw)]

    assert names() == ["Fraud", "churn-a", "churn-b", "zeta"]
    assert names("name = 'zeta'") == ["zeta"]
    assert names("name LIKE 'churn%'") == ["churn-a", "churn-b"]
    assert names("name LIKE 'fraud'") == []
    assert names("name ILIKE 'fraud'") == ["Fraud"]
    assert names("tags.team = 'risk' or name = 'zeta'") == ["churn-b", "zeta"]
    assert names("tags.team IS NULL") == ["churn-a", "zeta"]
    assert names("name IN ('zeta', 'Fraud')") == ["Fraud", "zeta"]
    assert names(order_by=["name DESC"]) == ["zeta", "churn-b", "churn-a", "Fraud"]
    assert names(max_results=2) == ["Fraud", "churn-a"]
    assert registry.search_registered_models("name = 'zeta'")[0].name == "zeta"
    rm = client.search_registered_models("name = 'churn-a'")[0]
    assert [v.version for v in rm.latest_versions] == ["1"]


def test_search_model_versions(client, three):
    client.transition_model_version_stage("m", 2, "Production")
    client.set_model_version_tag("m", 3, "validated", "yes")
    other = autolog.register_model(three[0].model_uri, "other")

    def keys(f=None, **kw):
        return [(v.name, v.version) for v in client.search_model_versions(f, **kw)]

    assert keys() == [("m", "3"), ("m", "2"), ("m", "1"), ("other", "1")]
    assert keys("name = 'm' and version_number >= 2") == [("m", "3"), ("m", "2")]
    assert keys("current_stage = 'production'") == [("m", "2")]
    assert keys("tags.validated = 'yes'") == [("m", "3")]
    assert keys(f"run_id = '{three[0].run_id}'") == [("m", "1"), ("other", "1")]
    assert keys(f"source_path = '{other.source}'") == [("m", "1"), ("other", "1")]
    assert keys("name = 'm'", order_by=["version_number ASC"]) == [
        ("m", "1"),
        ("m", "2"),
        ("m", "3"),
    ]
    assert keys("name = 'm'", max_results=1) == [("m", "3")]
    assert keys("version IN (1, 3) and name != 'other'") == [("m", "3"), ("m", "1")]
    assert [v.version for v in registry.search_model_versions("version_number = 2")] == ["2"]


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("nme = 'x'", "position 0 near 'nme': unknown name 'nme'"),
        ("name = ", "position 7 (end of input): expected a value after '='"),
        ("version_number = 'two'", "compares with a number, not a string"),
        ("current_stage = 'Prod'", "Unknown stage 'Prod'"),
        ("metrics.acc > 1", "unknown prefix 'metrics.'"),
        ("name = 'x' and (run_id = 'y'", "expected ')'"),
        ("name = 'x'; DROP TABLE model_versions", "';' is not allowed"),
    ],
)
def test_malformed_version_filters(client, three, bad, fragment):
    with pytest.raises(SearchSyntaxError) as e:
        client.search_model_versions(bad)
    assert fragment in str(e.value)
    assert len(client.search_model_versions()) == 3


def test_malformed_model_filter_and_order_by(client, three):
    with pytest.raises(SearchSyntaxError, match="unknown name 'run_id'"):
        client.search_registered_models("run_id = 'x'")
    with pytest.raises(SearchSyntaxError, match="not by tags"):
        client.search_registered_models(order_by=["tags.team"])
    with pytest.raises(SearchSyntaxError, match="expected ASC, DESC"):
        client.search_model_versions(order_by=["version_number DOWN"])


# -- schema ----------------------------------------------------------------------------------


def test_a_version_1_database_is_upgraded_in_place(tracking_dir):
    from store.sqlite import MIGRATIONS, Store

    db = tracking_dir / "old.db"
    old = Store(db, tracking_dir / "art")
    run = old.create_run("0", "r")
    conn = old.conn
    for table in (
        "registered_model_aliases",
        "model_version_tags",
        "model_versions",
        "registered_model_tags",
        "registered_models",
    ):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("PRAGMA user_version = 1")
    old.close()

    new = Store(db, tracking_dir / "art")
    assert new.schema_version == len(MIGRATIONS)
    assert new.get_run(run.info.run_id).info.run_name == "r"
    assert new.search_registered_models() == []
    new.create_registered_model("x")
    assert new.get_registered_model("x").name == "x"


def test_import_autolog_stays_light():
    code = (
        "import sys, autolog\n"
        "heavy = [m for m in ('sqlite3', 'store.search', 'store.sqlite', 'pathlib', 'difflib') "
        "if m in sys.modules]\n"
        "print(heavy)\n"
        "assert hasattr(autolog.Client, 'set_registered_model_alias')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    assert out.stdout.strip() == "[]"


# -- autolog registers -----------------------------------------------------------------------


def test_seed_autolog_random_forest_registers_versions_and_loads_by_alias(client):
    from sklearn.ensemble import RandomForestRegressor

    from integrations import sklearn as skl

    rng = np.random.default_rng(0)
    Xr = rng.normal(size=(60, 3))
    yr = Xr @ np.array([1.0, -2.0, 0.5]) + rng.normal(scale=0.1, size=60)
    skl.autolog(registered_model_name="rf-seed")

    first = RandomForestRegressor(n_estimators=5, max_depth=3, random_state=0).fit(Xr, yr)
    run1 = autolog.last_active_run().info.run_id
    second = RandomForestRegressor(n_estimators=7, max_depth=2, random_state=1).fit(Xr, yr)
    run2 = autolog.last_active_run().info.run_id
    assert run1 != run2

    versions = client.search_model_versions("name = 'rf-seed'", order_by=["version_number"])
    assert [(v.version, v.run_id) for v in versions] == [("1", run1), ("2", run2)]
    assert [v.source for v in versions] == [f"runs:/{run1}/model", f"runs:/{run2}/model"]
    assert [(v.name, v.version) for v in client.get_model_versions_for_run(run1)] == [
        ("rf-seed", "1")
    ]

    client.set_registered_model_alias("rf-seed", "champion", 1)
    champion = autolog.load_model("models:/rf-seed@champion")
    np.testing.assert_array_equal(champion.predict(Xr), first.predict(Xr))
    assert not np.array_equal(champion.predict(Xr), second.predict(Xr))
    np.testing.assert_array_equal(
        autolog.load_model("models:/rf-seed/latest").predict(Xr), second.predict(Xr)
    )


def _fit_xgboost(Xr, yr):
    import xgboost as xgb

    return xgb.XGBRegressor(n_estimators=3, max_depth=2).fit(Xr, yr)


def _fit_lightgbm(Xr, yr):
    import lightgbm as lgb

    return lgb.LGBMRegressor(n_estimators=3, min_child_samples=2, verbose=-1).fit(Xr, yr)


def _fit_statsmodels(Xr, yr):
    import statsmodels.api as sm

    return sm.OLS(yr, Xr).fit()


@pytest.mark.parametrize(
    "lib, fit",
    [("xgboost", _fit_xgboost), ("lightgbm", _fit_lightgbm), ("statsmodels", _fit_statsmodels)],
)
def test_each_integration_registers_its_autologged_model(client, lib, fit):
    import importlib

    integration = importlib.import_module(f"integrations.{lib}")
    rng = np.random.default_rng(0)
    Xr = rng.normal(size=(40, 3))
    yr = Xr @ np.array([1.0, -2.0, 0.5])
    integration.autolog(registered_model_name=f"{lib}-model")
    model = fit(Xr, yr)
    run_id = autolog.last_active_run().info.run_id
    [mv] = client.search_model_versions(f"name = '{lib}-model'")
    assert (mv.version, mv.run_id, mv.source) == ("1", run_id, f"runs:/{run_id}/model")
    loaded = autolog.load_model(f"models:/{lib}-model/1")
    np.testing.assert_allclose(
        np.asarray(loaded.predict(Xr), dtype=float), np.asarray(model.predict(Xr), dtype=float)
    )
