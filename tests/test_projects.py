"""MLflow Projects: MLproject files, `autolog run`, environments, tracking of the child's run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import autolog
import autolog.projects
from autolog import tracking
from autolog.cli import main
from autolog.errors import RunNotFoundError
from autolog.projects import ProjectError, load_project
from autolog.projects.envs import COMPLETE_MARKER
from autolog.projects.spec import resolve_parameters

REPO = Path(autolog.__file__).resolve().parents[1]

MLPROJECT = """\
name: fixture
entry_points:
  train:
    parameters:
      alpha: {type: float, default: 0.5}
      n: {type: int, default: 3}
      data: path
      label: {type: string, default: "plain"}
    command: "python train.py --alpha {alpha} --n {n} --data {data} --label {label}"
  echo:
    parameters:
      text: string
    command: "python echo.py {text}"
"""

TRAIN = """\
import argparse, os, sys
import autolog
VERSION = {version}
p = argparse.ArgumentParser()
p.add_argument("--alpha", type=float); p.add_argument("--n", type=int)
p.add_argument("--data"); p.add_argument("--label"); p.add_argument("--extra", default="")
a = p.parse_args()
autolog.autolog()
from sklearn.linear_model import LogisticRegression
rows = [[float(x)] for x in open(a.data).read().split()]
LogisticRegression().fit(rows, [i % 2 for i in range(len(rows))])
autolog.log_metric("code_version", VERSION)
autolog.log_metric("alpha_seen", a.alpha)
autolog.set_tag("extra_seen", a.extra)
"""

ECHO = """\
import json, sys
open("argv.json", "w").write(json.dumps(sys.argv[1:]))
"""


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
    }
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def project(tmp_path) -> tuple[Path, str, str]:
    """A git repository with two commits of one project: (folder, old commit, new commit)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "MLproject").write_text(MLPROJECT)
    (repo / "echo.py").write_text(ECHO)
    (repo / "data.txt").write_text("0 1 2 3 4 5 6 7\n")
    (repo / "train.py").write_text(TRAIN.format(version=1))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v1")
    old = git(repo, "rev-parse", "HEAD")
    (repo / "train.py").write_text(TRAIN.format(version=2))
    git(repo, "commit", "-qam", "v2")
    return repo, old, git(repo, "rev-parse", "HEAD")


def only_run(tracking_dir) -> autolog.Run:
    runs = autolog.search_runs(search_all_experiments=True, output_format="list")
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return tracking.get_run(runs[0].info.run_id)


# -- MLproject files ----------------------------------------------------------------------


def test_mlproject_is_read_with_types_and_defaults(project) -> None:
    repo, _, _ = project
    p = load_project(str(repo))
    assert p.name == "fixture" and p.env_type is None
    train = p.get_entry_point("train")
    assert {k: (v.type, v.default) for k, v in train.parameters.items()} == {
        "alpha": ("float", "0.5"),
        "n": ("int", "3"),
        "data": ("path", None),
        "label": ("string", "plain"),
    }
    assert p.get_entry_point("echo.py").command == "python echo.py"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: x\nentry_point:\n  main: {command: a}\n",
            "line 2: unknown key 'entry_point'; did you mean 'entry_points'?",
        ),
        (
            "entry_points:\n  main:\n    command: python a.py {alpha}\n",
            "line 3: command uses {alpha} but 'alpha' is not a parameter of 'main'",
        ),
        (
            "entry_points:\n  main:\n    parameters:\n      a: {type: number}\n    command: x {a}\n",
            "line 4: parameter 'a' has type 'number'; use one of string, float, int, path, uri.",
        ),
        (
            "entry_points:\n  main:\n    parameters:\n      a: {type: int, default: 1.5}\n    command: x {a}\n",
            "line 4: default '1.5' of 'a' is not a valid int.",
        ),
        (
            "entry_points:\n  main:\n    parameters: {}\n",
            "line 2: entry point 'main' needs a command",
        ),
        ("python_env: missing.yaml\n", "line 1: python_env names 'missing.yaml', but "),
        (
            "python_env: a.yaml\nconda_env: b.yaml\n",
            "line 2: a project declares one environment, not python_env and conda_env; keep one.",
        ),
        ("docker_env: {volumes: [1]}\n", "line 1: docker_env needs an image"),
        ("entry_points:\n  main:\n   command: [unclosed\n", "line 4: not valid YAML"),
    ],
)
def test_bad_mlproject_names_the_line_and_the_fix(tmp_path, text, message) -> None:
    (tmp_path / "MLproject").write_text(text)
    with pytest.raises(ProjectError) as err:
        load_project(str(tmp_path))
    assert f"{tmp_path / 'MLproject'} " in str(err.value)
    assert message in str(err.value)


def test_a_folder_without_mlproject_runs_by_convention(tmp_path) -> None:
    (tmp_path / "main.py").write_text("print(1)\n")
    (tmp_path / "job.sh").write_text("echo hi\n")
    (tmp_path / "requirements.txt").write_text("six\n")
    p = load_project(str(tmp_path))
    assert (p.env_type, p.env_file) == ("python_env", str(tmp_path / "requirements.txt"))
    assert p.get_entry_point("main").command == "python main.py"
    assert p.get_entry_point("job.sh").command == "bash job.sh"
    with pytest.raises(ProjectError, match=r"Unknown entry point 'train' .* Pass one of them"):
        p.get_entry_point("train")


def test_parameters_are_type_checked(project, tmp_path, monkeypatch) -> None:
    repo, _, _ = project
    train = load_project(str(repo)).get_entry_point("train")
    (tmp_path / "d.txt").write_text("1")
    final, extra = resolve_parameters(
        train, {"data": str(tmp_path / "d.txt"), "n": "7", "seed": "1"}
    )
    assert final == {"alpha": "0.5", "n": "7", "data": str(tmp_path / "d.txt"), "label": "plain"}
    assert extra == {"seed": "1"}
    cases = [
        ({}, "Entry point 'train' needs a value for 'data'; pass -P data=VALUE."),
        (
            {"data": "d.txt", "alpha": "abc"},
            "Parameter 'alpha' of entry point 'train' is a float, got 'abc'; pass a number, e.g. -P alpha=0.5.",
        ),
        (
            {"data": "d.txt", "n": "2.5"},
            "Parameter 'n' of entry point 'train' is an int, got '2.5'",
        ),
        (
            {"data": str(tmp_path / "nope.csv")},
            f"is a path, but {tmp_path / 'nope.csv'} does not exist",
        ),
    ]
    monkeypatch.chdir(tmp_path)  # relative paths are made absolute against the working directory
    for given, message in cases:
        with pytest.raises(ProjectError) as err:
            resolve_parameters(train, given)
        assert message in str(err.value)
    assert resolve_parameters(train, {"data": "d.txt"})[0]["data"] == str(tmp_path / "d.txt")
    (repo / "MLproject").write_text(
        "entry_points:\n  m:\n    parameters: {u: uri}\n    command: x {u}\n"
    )
    m = load_project(str(repo)).get_entry_point("m")
    assert resolve_parameters(m, {"u": "s3://b/k"})[0] == {"u": "s3://b/k"}
    with pytest.raises(ProjectError, match="is a uri, got 'data.csv' \\(no scheme\\)"):
        resolve_parameters(m, {"u": "data.csv"})


# -- running ------------------------------------------------------------------------------


def test_run_local_records_params_commit_metrics_and_model(project, tracking_dir) -> None:
    repo, _, head = project
    submitted = autolog.projects.run(
        str(repo),
        "train",
        {"data": str(repo / "data.txt"), "alpha": 0.25, "extra": "e 1"},
        env_manager="local",
        experiment_name="proj",
    )
    assert submitted.get_status() == "FINISHED"
    run = only_run(tracking_dir)
    assert run.info.run_id == submitted.run_id and run.info.status == "FINISHED"
    assert {k: run.data.params[k] for k in ("alpha", "n", "data", "label", "extra")} == {
        "alpha": "0.25",
        "n": "3",
        "data": str(repo / "data.txt"),
        "label": "plain",
        "extra": "e 1",
    }
    assert run.data.params["C"] == "1.0"  # the autologged LogisticRegression's own params
    assert run.data.metrics["code_version"] == 2.0 and run.data.metrics["alpha_seen"] == 0.25
    tags = run.data.tags
    assert (tags["mlflow.source.git.commit"], tags["mlflow.source.git.branch"]) == (head, "main")
    assert tags["mlflow.project.entryPoint"] == "train"
    assert tags["mlflow.project.env"] == "local" and tags["mlflow.project.backend"] == "local"
    assert tags["mlflow.source.type"] == "PROJECT" and tags["mlflow.source.name"] == str(repo)
    assert tags["autolog.project.name"] == "fixture" and tags["extra_seen"] == "e 1"
    assert tags["mlflow.autologging"] == "sklearn"
    assert tags["autolog.project.reproduce"] == (
        f"autolog run {repo} -e train -P alpha=0.25 -P n=3 -P data={repo / 'data.txt'} "
        f"-P label=plain -P 'extra=e 1' --env-manager local --version {head}"
    )
    assert (Path(run.info.artifact_uri) / "model" / "MLmodel").is_file()
    assert autolog.get_experiment_by_name("proj").experiment_id == run.info.experiment_id


def test_reproduce_at_an_older_version(project, tracking_dir) -> None:
    repo, old, head = project
    out = CliRunner().invoke(
        main,
        [
            "--store",
            str(tracking_dir),
            "run",
            f"file://{repo}",
            "-e",
            "train",
            "-P",
            "data=" + str(repo / "data.txt"),
            "--env-manager",
            "local",
            "--version",
            old,
        ],
    )
    assert out.exit_code == 0, out.output
    run = only_run(tracking_dir)
    assert run.data.metrics["code_version"] == 1.0
    assert run.data.tags["mlflow.source.git.commit"] == old
    assert run.data.tags["autolog.project.version"] == old
    assert git(repo, "rev-parse", "HEAD") == head  # the user's own checkout never moved
    assert "VERSION = 2" in (repo / "train.py").read_text()
    out = CliRunner().invoke(
        main, ["--store", str(tracking_dir), "run", str(repo), "--version", "nope"]
    )
    assert out.exit_code == 2
    assert f"Version 'nope' is not a commit, branch or tag of {repo}" in out.output


def test_errors_before_the_run_create_no_run(project, tracking_dir) -> None:
    repo, _, _ = project
    cases = [
        (["-e", "fit"], "Unknown entry point 'fit'"),
        (["-e", "train"], "needs a value for 'data'; pass -P data=VALUE"),
        (
            ["-e", "train", "-P", "data=data.txt", "-P", "n=many"],
            "Parameter 'n' of entry point 'train' is an int, got 'many'",
        ),
        (["-e", "echo", "-P", "text"], "expected NAME=VALUE, got 'text'"),
        (
            [
                "-e",
                "echo",
                "-P",
                "text=a",
                "--version",
                "HEAD",
                "--experiment-name",
                "a",
                "--experiment-id",
                "0",
            ],
            "not both",
        ),
    ]
    for args, message in cases:
        out = CliRunner().invoke(main, ["--store", str(tracking_dir), "run", str(repo), *args])
        assert out.exit_code == 2, out.output
        assert message in out.output
    out = CliRunner().invoke(main, ["--store", str(tracking_dir), "run", str(repo / "nowhere")])
    assert "is neither an existing folder nor a git URL" in out.output
    assert autolog.search_runs(search_all_experiments=True, output_format="list") == []


def test_a_failing_command_ends_the_run_failed(tmp_path, tracking_dir) -> None:
    (tmp_path / "fail.py").write_text(
        "import autolog, sys\nautolog.log_metric('before', 1)\nsys.exit(3)\n"
    )
    with pytest.raises(ProjectError, match=r"FAILED: the entry point exited with status 3\."):
        autolog.projects.run(str(tmp_path), "fail.py")
    run = only_run(tracking_dir)
    assert (run.info.status, run.data.metrics) == ("FAILED", {"before": 1.0})
    assert run.info.end_time is not None
    out = CliRunner().invoke(
        main, ["--store", str(tracking_dir), "run", str(tmp_path), "-e", "fail.py"]
    )
    assert out.exit_code == 3


def test_shell_quoting_passes_values_intact_and_runs_nothing_else(project, tracking_dir) -> None:
    repo, _, _ = project
    nasty = """it's "quoted"; touch pwned $(touch pwned2) `touch pwned3` & | > x"""
    autolog.projects.run(str(repo), "echo", {"text": nasty, "--odd key": "a;b"})
    assert json.loads((repo / "argv.json").read_text()) == [nasty, "----odd key", "a;b"]
    assert sorted(p.name for p in repo.iterdir() if p.name.startswith(("pwned", "x"))) == []
    assert only_run(tracking_dir).data.params["text"] == nasty


CHILD = """\
import json, os, autolog
with autolog.start_run() as r:
    autolog.log_metric("inside", 1)
    status = autolog.get_run(r.info.run_id).info.status
with autolog.start_run(nested=True) as child:
    pass
json.dump({"run": r.info.run_id, "status": status, "child": child.info.run_id,
           "env": {k: os.environ[k] for k in ("AUTOLOG_TRACKING_URI", "AUTOLOG_EXPERIMENT_ID")}},
          open("seen.json", "w"))
"""


def test_the_child_continues_the_run_and_leaves_it_to_the_parent(
    tmp_path, tracking_dir, monkeypatch
) -> None:
    (tmp_path / "child.py").write_text(CHILD)
    monkeypatch.chdir(tmp_path.parent)  # the tracking URI reaches the child absolute
    autolog.set_tracking_uri(os.path.relpath(tracking_dir))
    autolog.set_experiment("kids")
    submitted = autolog.projects.run(str(tmp_path), "child.py")
    seen = json.loads((tmp_path / "seen.json").read_text())
    exp = autolog.get_experiment_by_name("kids").experiment_id
    assert seen == {
        "run": submitted.run_id,
        "status": "RUNNING",
        "child": seen["child"],
        "env": {"AUTOLOG_TRACKING_URI": str(tracking_dir), "AUTOLOG_EXPERIMENT_ID": exp},
    }
    parent = tracking.get_run(submitted.run_id)
    assert (parent.info.status, parent.data.metrics) == ("FINISHED", {"inside": 1.0})
    assert tracking.get_run(seen["child"]).info.parent_run_id == submitted.run_id


def test_inherited_run_id_in_process(tracking_dir, monkeypatch) -> None:
    made = autolog.Client().create_run("0")
    monkeypatch.setenv("MLFLOW_RUN_ID", made.info.run_id)
    autolog.log_metric("m", 2)  # no start_run: the fluent call logs into the inherited run
    with autolog.start_run() as r:
        autolog.log_param("p", 1)
        assert autolog.active_run().info.run_id == made.info.run_id
    assert r.info.run_id == made.info.run_id
    assert autolog.active_run() is None
    run = tracking.get_run(made.info.run_id)
    assert (run.info.status, run.data.metrics, run.data.params) == (
        "RUNNING",
        {"m": 2.0},
        {"p": "1"},
    )
    monkeypatch.setenv("AUTOLOG_RUN_ID", "f" * 32)  # ours wins over MLflow's
    with pytest.raises(RunNotFoundError):
        autolog.start_run()


def test_cancel_and_sigterm_end_the_run_killed(tmp_path, tracking_dir) -> None:
    (tmp_path / "slow.py").write_text(
        "import os, time\nopen('pid', 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
    )
    submitted = autolog.projects.run(str(tmp_path), "slow.py", synchronous=False)
    pid = wait_for_pid(tmp_path / "pid")
    assert submitted.get_status() == "RUNNING"
    submitted.cancel()
    assert submitted.get_status() == "KILLED" and not alive(pid)
    assert tracking.get_run(submitted.run_id).info.status == "KILLED"
    (tmp_path / "pid").unlink()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cli = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autolog",
            "--store",
            str(tracking_dir),
            "run",
            str(tmp_path),
            "-e",
            "slow.py",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    pid = wait_for_pid(tmp_path / "pid")
    cli.send_signal(signal.SIGTERM)
    assert cli.wait(30) == 130
    assert not alive(pid)
    runs = autolog.search_runs(search_all_experiments=True, output_format="list")
    assert sorted(r.info.status for r in runs) == ["KILLED", "KILLED"]


def wait_for_pid(path: Path) -> int:
    deadline = time.monotonic() + 30
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, "the entry point never started"
        time.sleep(0.05)
    return int(path.read_text())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie has exited
        return f.read().split(")")[-1].split()[0] != "Z"


def test_conda_and_docker_say_what_they_need(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CONDA_EXE", raising=False)
    (tmp_path / "conda.yaml").write_text("dependencies: [python=3.11]\n")
    (tmp_path / "main.py").write_text("print(1)\n")
    with pytest.raises(ProjectError, match="runs with conda, but conda is not installed"):
        autolog.projects.run(str(tmp_path))
    (tmp_path / "MLproject").write_text("docker_env: {image: 'python:3.11'}\nentry_points: {}\n")
    with pytest.raises(
        ProjectError,
        match=r"declares docker_env \(image 'python:3.11'\) and needs Docker, which is not installed",
    ):
        autolog.projects.run(str(tmp_path), "main.py")
    assert autolog.search_runs(search_all_experiments=True, output_format="list") == []


# -- virtualenv ---------------------------------------------------------------------------

VENV_MAIN = """\
import json, sys, six, autolog
autolog.log_metric("ok", 1)
json.dump({"prefix": sys.prefix, "six": six.__file__}, open("where.json", "w"))
"""


@pytest.fixture(scope="session")
def envs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("envs")


def test_virtualenv_is_built_once_and_reused(tmp_path, tracking_dir, envs_dir, monkeypatch) -> None:
    monkeypatch.setenv("AUTOLOG_ENVS_DIR", str(envs_dir))
    (tmp_path / "python_env.yaml").write_text("dependencies:\n  - -r requirements.txt\n")
    (tmp_path / "requirements.txt").write_text("six\n")
    (tmp_path / "MLproject").write_text(
        "name: venv\npython_env: python_env.yaml\nentry_points:\n  main: {command: python main.py}\n"
    )
    (tmp_path / "main.py").write_text(VENV_MAIN)
    first = autolog.projects.run(str(tmp_path))  # virtualenv: the default for python_env
    where = json.loads((tmp_path / "where.json").read_text())
    envs = [p for p in envs_dir.iterdir() if p.is_dir()]
    assert len(envs) == 1 and envs[0].name.startswith("venv-")
    assert where["prefix"] == str(envs[0]) and where["six"].startswith(str(envs[0]))
    marker = envs[0] / COMPLETE_MARKER
    built = marker.stat().st_mtime_ns
    second = autolog.projects.run(str(tmp_path), env_manager="virtualenv")
    assert marker.stat().st_mtime_ns == built
    assert [p for p in envs_dir.iterdir() if p.is_dir()] == envs
    for submitted in (first, second):
        run = tracking.get_run(submitted.run_id)
        assert (run.info.status, run.data.metrics) == ("FINISHED", {"ok": 1.0})
        assert run.data.tags["mlflow.project.env"] == "virtualenv"


# -- the example and the UI ---------------------------------------------------------------


def test_example_workflow_chains_two_steps(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "AUTOLOG_TRACKING_URI": str(tmp_path / "runs")}
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "projects_workflow.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    autolog.set_tracking_uri(str(tmp_path / "runs"))
    runs = autolog.search_runs(
        search_all_experiments=True, output_format="list", order_by=["start_time"]
    )
    assert [r.data.tags["mlflow.project.entryPoint"] for r in runs] == ["prepare", "train"]
    prepare, train = runs
    assert train.data.params["data"] == f"runs:/{prepare.info.run_id}/data"
    assert train.data.metrics["rows"] == 40.0 and "training_score" in train.data.metrics
    assert {r.info.status for r in runs} == {"FINISHED"}


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_run_page_shows_the_reproduce_command(project, tracking_dir) -> None:
    from starlette.testclient import TestClient

    from autolog.ui import create_app

    repo, _, head = project
    submitted = autolog.projects.run(str(repo), "echo", {"text": "a b"})
    client = TestClient(create_app(tracking._store()), base_url="http://127.0.0.1:5000")
    html = client.get(f"/runs/{submitted.run_id}").text
    command = (
        f"autolog run {repo} -e echo -P &#39;text=a b&#39; --env-manager local --version {head}"
    )
    assert f'<code id="reproduce">{command}</code>' in html


def test_subdirectory_of_a_repository_at_a_version(project, tracking_dir) -> None:
    repo, _, _ = project
    (repo / "steps" / "say").mkdir(parents=True)
    (repo / "steps" / "say" / "say.sh").write_text('printf %s "$1" > "$2"\n')
    out_file = repo / "said.txt"
    (repo / "steps" / "say" / "MLproject").write_text(
        "entry_points:\n  main:\n    parameters: {text: string, out: string}\n"
        "    command: bash say.sh {text} {out}\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "mlproject")
    commit = git(repo, "rev-parse", "HEAD")
    run = autolog.projects.run(
        f"{repo}#steps/say", parameters={"text": "hi there", "out": str(out_file)}, version=commit
    )
    assert out_file.read_text() == "hi there"
    tags = tracking.get_run(run.run_id).data.tags
    assert (tags["mlflow.source.name"], tags["mlflow.source.git.commit"]) == (
        f"{repo}#steps/say",
        commit,
    )
    with pytest.raises(ProjectError, match=r"Subdirectory '../x' in '.*#../x' leaves the project"):
        autolog.projects.run(f"{repo}#../x")
    with pytest.raises(ProjectError, match="Subdirectory 'nope' does not exist in "):
        autolog.projects.run(f"{repo}#nope")
