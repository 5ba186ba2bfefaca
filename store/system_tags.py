"""The names of the tags autolog sets on every run by itself (system tags).

A fact MLflow has a tag for carries MLflow's name (``mlflow.utils.mlflow_tags``), so MLflow's
clients, UI and tools read our runs as their own; facts MLflow has no tag for carry an
``autolog.`` name. Stores written before schema version 5 used ``autolog.`` names for all of
them: migration 5 renames their tags (:data:`RENAMED`), and a search filter written with an
old name still works with a DeprecationWarning (:mod:`store.filters`).
"""

from __future__ import annotations

# MLflow's names (mlflow/utils/mlflow_tags.py)
RUN_NAME = "mlflow.runName"
PARENT_RUN_ID = "mlflow.parentRunId"
USER = "mlflow.user"
SOURCE_NAME = "mlflow.source.name"
SOURCE_TYPE = "mlflow.source.type"
GIT_COMMIT = "mlflow.source.git.commit"
GIT_BRANCH = "mlflow.source.git.branch"
GIT_REPO_URL = "mlflow.source.git.repoURL"
GIT_DIRTY = "mlflow.source.git.dirty"
AUTOLOGGING = "mlflow.autologging"
LOG_MODEL_HISTORY = "mlflow.log-model.history"
NOTE = "mlflow.note.content"
DATASETS = "mlflow.datasets"
MODEL_VERSIONS = "mlflow.modelVersions"  # on a logged model: the versions registered from it

# Facts MLflow has no tag for
GIT_REPO = "autolog.source.git.repo"  # the local checkout (MLflow records only the remote)
ARGV = "autolog.source.argv"
HOST = "autolog.host"
PYTHON_VERSION = "autolog.python_version"
PLATFORM = "autolog.platform"
PACKAGES = "autolog.packages"

# old name (schema version < 5) -> MLflow's name
RENAMED: dict[str, str] = {
    "autolog.runName": RUN_NAME,
    "autolog.parentRunId": PARENT_RUN_ID,
    "autolog.user": USER,
    "autolog.source.name": SOURCE_NAME,
    "autolog.source.type": SOURCE_TYPE,
    "autolog.source.git.commit": GIT_COMMIT,
    "autolog.source.git.branch": GIT_BRANCH,
    "autolog.source.git.repoURL": GIT_REPO_URL,
    "autolog.source.git.dirty": GIT_DIRTY,
    "autolog.integration": AUTOLOGGING,
    "autolog.log-model.history": LOG_MODEL_HISTORY,
    "autolog.note.content": NOTE,
}
