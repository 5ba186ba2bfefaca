"""Run a project: create the run, start the entry point in its environment, end the run.

The run is created before the entry point starts; the child gets its id through the
environment (``AUTOLOG_RUN_ID``, with MLflow's ``MLFLOW_RUN_ID`` too when the tracking URI is a
server), so ``autolog.autolog()`` and ``start_run()`` inside the project continue it. Only the
parent ends the run: FINISHED on exit status 0, FAILED otherwise, KILLED when cancelled or
killed by a signal. The child leads its own process group so that cancelling stops all of it.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
from typing import Any

from autolog.projects import envs
from autolog.projects.errors import ProjectError
from autolog.projects.fetch import Fetched, fetch_project
from autolog.projects.spec import (
    EntryPoint,
    Project,
    load_project,
    render_command,
    resolve_parameters,
)

CANCEL_GRACE_S = 10.0

# MLflow's tag names (mlflow/utils/mlflow_tags.py), so MLflow's tools read project runs.
TAG_SOURCE_NAME = "mlflow.source.name"
TAG_SOURCE_TYPE = "mlflow.source.type"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_GIT_BRANCH = "mlflow.source.git.branch"
TAG_GIT_REPO_URL = "mlflow.source.git.repoURL"
TAG_ENTRY_POINT = "mlflow.project.entryPoint"
TAG_ENV = "mlflow.project.env"
TAG_BACKEND = "mlflow.project.backend"
TAG_USER = "mlflow.user"
TAG_RUN_NAME = "mlflow.runName"
# Facts MLflow has no tag for.
TAG_PROJECT_NAME = "autolog.project.name"
TAG_PROJECT_URI = "autolog.project.uri"
TAG_PROJECT_VERSION = "autolog.project.version"
TAG_COMMAND = "autolog.project.command"
TAG_REPRODUCE = "autolog.project.reproduce"


class SubmittedRun:
    """A project run in progress (MLflow's SubmittedRun): wait(), get_status(), cancel()."""

    def __init__(self, run_id: str, process: subprocess.Popen, client: Any, fetched: Fetched):
        self._run_id = run_id
        self.command_proc = process
        self._client = client
        self._fetched = fetched
        self._cancelled = False
        self._status: str | None = None
        self._done = threading.Event()
        # A watcher ends the run when the child exits, even if nobody calls wait().
        self._watcher = threading.Thread(target=self._watch, name=f"autolog-run-{run_id[:8]}")
        self._watcher.daemon = True
        self._watcher.start()

    @property
    def run_id(self) -> str:
        return self._run_id

    def _watch(self) -> None:
        code = self.command_proc.wait()
        if self._cancelled or code < 0:
            status = "KILLED"
        else:
            status = "FINISHED" if code == 0 else "FAILED"
        try:
            self._client.set_terminated(self._run_id, status)
        finally:
            self._status = status
            self._fetched.cleanup()
            self._done.set()

    def wait(self) -> bool:
        """Block until the entry point exits and the run is ended; True when it succeeded."""
        while not self._done.wait(0.5):  # a timed wait lets Ctrl-C through
            pass
        return self._status == "FINISHED"

    def get_status(self) -> str:
        """RUNNING, FINISHED, FAILED or KILLED."""
        return self._status if self._done.is_set() and self._status else "RUNNING"

    @property
    def returncode(self) -> int | None:
        return self.command_proc.returncode

    def cancel(self) -> None:
        """Stop the entry point (its whole process group) and end the run KILLED."""
        if self.command_proc.poll() is None:
            self._cancelled = True
            _signal_group(self.command_proc, signal.SIGTERM)
            try:
                self.command_proc.wait(CANCEL_GRACE_S)
            except subprocess.TimeoutExpired:
                _signal_group(self.command_proc, signal.SIGKILL)
        self.wait()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run(
    uri: str,
    entry_point: str = "main",
    parameters: dict[str, Any] | None = None,
    *,
    version: str | None = None,
    env_manager: str | None = None,
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    synchronous: bool = True,
    tracking_uri: str | None = None,
    quiet: bool = False,
) -> SubmittedRun:
    """Run an entry point of the project at uri, tracked as one run.

    :param uri: a local folder, ``file://...``, or a git repository (local path or URL), with an
        optional ``#subdirectory``.
    :param entry_point: an entry point of the MLproject, or a .py/.sh file of the project.
    :param parameters: values for the entry point's parameters; unknown ones are passed to the
        command as ``--key value``.
    :param version: a git commit, branch or tag to check out first.
    :param env_manager: ``local``, ``virtualenv`` or ``conda`` (default: what the project declares).
    :param synchronous: wait for the entry point and raise ProjectError when it fails; with
        False, return at once (``wait()``, ``get_status()``, ``cancel()`` on the result).
    """
    from autolog import tracking

    if experiment_name and experiment_id:
        raise ProjectError("Give --experiment-name or --experiment-id, not both.")
    params = {str(k): str(v) for k, v in (parameters or {}).items()}
    fetched = fetch_project(uri, version)
    try:
        project = load_project(fetched.directory)
        entry = project.get_entry_point(entry_point)
        logged, extra = resolve_parameters(entry, params)
        manager = envs.choose_manager(project, env_manager)
        environment = envs.prepare(project, manager, quiet=quiet)
        client = tracking.Client(tracking_uri)
        exp_id = _experiment(client, experiment_name, experiment_id)
        command = _command(entry, params, logged, extra)
        tags = _tags(fetched, project, entry, manager, uri, version, command, logged, extra)
        created = client.create_run(exp_id, tags=tags, run_name=run_name)
        run_id = created.info.run_id
    except BaseException:
        fetched.cleanup()
        raise
    try:
        all_params = {**logged, **extra}
        process = _launch(
            client, run_id, exp_id, environment, project, fetched, command, all_params
        )
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        fetched.cleanup()
        raise
    submitted = SubmittedRun(run_id, process, client, fetched)
    if synchronous:
        _wait(submitted, run_id, process)
    return submitted


def _launch(
    client: Any,
    run_id: str,
    exp_id: str,
    environment: envs.Environment,
    project: Project,
    fetched: Fetched,
    command: str,
    params: dict[str, str],
) -> subprocess.Popen:
    """Log the run's params, then start the entry point in its own session."""
    if params:
        client.log_batch(run_id, params=params)
    child_env = _child_env(environment, run_id, client.tracking_uri, exp_id)
    argv = _argv(environment, project, fetched, child_env, command)
    return subprocess.Popen(argv, cwd=fetched.directory, env=child_env, start_new_session=True)


def _wait(submitted: SubmittedRun, run_id: str, process: subprocess.Popen) -> None:
    """Wait for the entry point; ProjectError when it fails."""
    try:
        ok = submitted.wait()
    except BaseException:  # Ctrl-C / SIGTERM: stop the child, the run reads KILLED
        submitted.cancel()
        raise
    if not ok:
        raise ProjectError(
            f"Run {run_id} {submitted.get_status()}: the entry point exited with status "
            f"{process.returncode}."
        )


def _experiment(client: Any, name: str | None, experiment_id: str | None) -> str:
    from autolog import tracking

    if experiment_id:
        return str(client.get_experiment(str(experiment_id)).experiment_id)
    if name:
        return str(client.store.get_or_create_experiment(name))
    if client._uri is None:
        return tracking._active_experiment_id()
    return os.environ.get(tracking.ENV_EXPERIMENT_ID) or "0"


def _command(
    entry: EntryPoint, params: dict[str, str], logged: dict[str, str], extra: dict[str, str]
) -> str:
    if any(v.startswith("runs:/") for v in logged.values()):
        # path parameters naming run artifacts are downloaded for the command
        import tempfile

        storage = tempfile.mkdtemp(prefix="autolog-params-")
        final, _ = resolve_parameters(entry, params, storage_dir=storage)
        return render_command(entry, final, extra)
    return render_command(entry, logged, extra)


def _tags(
    fetched: Fetched,
    project: Project,
    entry: EntryPoint,
    manager: str,
    uri: str,
    version: str | None,
    command: str,
    logged: dict[str, str],
    extra: dict[str, str],
) -> dict[str, str]:
    from autolog import context

    tags = {
        TAG_SOURCE_NAME: fetched.uri,
        TAG_SOURCE_TYPE: "PROJECT",
        TAG_ENTRY_POINT: entry.name,
        TAG_ENV: manager,
        TAG_BACKEND: "local",
        TAG_USER: context.current_user(),
        TAG_PROJECT_URI: uri,
        TAG_COMMAND: command,
        # MLflow's names for the source (MLflow's own `mlflow run` sets them too)
        "mlflow.source.name": fetched.uri,
        "mlflow.source.type": "PROJECT",
    }
    if project.name:
        tags[TAG_PROJECT_NAME] = project.name
    if version:
        tags[TAG_PROJECT_VERSION] = version
    git = {
        "commit": fetched.commit,
        "branch": fetched.branch,
        "repoURL": fetched.repo_url,
        "repo": fetched.repo_root,
    }
    for key, value in git.items():
        if value:
            # MLflow has no tag for the local checkout
            prefix = "autolog" if key == "repo" else "mlflow"
            tags[f"{prefix}.source.git.{key}"] = value
    if fetched.commit:
        tags["mlflow.source.git.dirty"] = "true" if fetched.dirty else "false"
    tags[TAG_REPRODUCE] = reproduce_command(fetched, entry.name, {**logged, **extra}, manager)
    return tags


def reproduce_command(
    fetched: Fetched, entry_point: str, params: dict[str, str], manager: str
) -> str:
    """The `autolog run` line that runs this project again, at the same commit."""
    parts = ["autolog", "run", fetched.uri, "-e", entry_point]
    for key, value in params.items():
        parts += ["-P", f"{key}={value}"]
    if manager in envs.MANAGERS:
        parts += ["--env-manager", manager]
    if fetched.commit:
        parts += ["--version", fetched.commit]
    return " ".join(shlex.quote(p) for p in parts)


def _child_env(
    environment: envs.Environment, run_id: str, tracking_uri: str, experiment_id: str
) -> dict[str, str]:
    from autolog import tracking

    env = dict(os.environ)
    env.pop("PYTHONHOME", None)
    env.update(environment.env)
    env[tracking.ENV_RUN_ID] = run_id
    env[tracking.ENV_TRACKING_URI] = tracking_uri
    env[tracking.ENV_EXPERIMENT_ID] = experiment_id
    env.pop(tracking.ENV_EXPERIMENT_NAME, None)
    if tracking_uri.startswith(("http://", "https://")):
        # a tracking server speaks MLflow's REST API, so MLflow code in the project joins too
        env.update(
            MLFLOW_RUN_ID=run_id,
            MLFLOW_TRACKING_URI=tracking_uri,
            MLFLOW_EXPERIMENT_ID=experiment_id,
        )
    return env


def _argv(
    environment: envs.Environment,
    project: Project,
    fetched: Fetched,
    child_env: dict[str, str],
    command: str,
) -> list[str]:
    if environment.manager != "docker":
        return [*environment.prefix, "bash", "-c", command]
    from autolog import tracking

    docker = project.docker_env or {}
    workdir = fetched.directory
    argv = [*environment.prefix, "run", "--rm", "-v", f"{workdir}:{workdir}", "-w", workdir]
    uri = child_env[tracking.ENV_TRACKING_URI]
    local_store = uri[len("sqlite:///") :] if uri.startswith("sqlite:///") else uri
    if "://" not in local_store:  # a local store is mounted at the same path inside
        folder = local_store if os.path.isdir(local_store) else os.path.dirname(local_store)
        argv += ["-v", f"{folder}:{folder}"]
    for volume in docker.get("volumes", []):
        argv += ["-v", volume]
    passed = {k: child_env[k] for k in child_env if k.startswith(("AUTOLOG_", "MLFLOW_"))}
    for item in docker.get("environment", []):
        if isinstance(item, list):
            passed[str(item[0])] = str(item[1])
        elif item in os.environ:
            passed[item] = os.environ[item]
        else:
            raise ProjectError(
                f"docker_env copies ${item} from this machine, but it is not set; set it first."
            )
    for key, value in passed.items():
        argv += ["-e", f"{key}={value}"]
    return [*argv, str(environment.location), "bash", "-c", command]
