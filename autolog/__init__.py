"""autolog: one call, autolog(), and every model you train is recorded in a local SQLite file."""

from __future__ import annotations

import importlib

from autolog.errors import AutologError, MlflowException
from autolog.tracking import (
    ActiveRun,
    Client,
    MlflowClient,
    active_run,
    create_experiment,
    delete_tag,
    end_run,
    get_artifact_uri,
    get_experiment_by_name,
    get_metric_history,
    get_run,
    get_tracking_uri,
    last_active_run,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_input,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_text,
    search_runs,
    set_experiment,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)

# typing.TYPE_CHECKING without importing typing (about a fifth of `import autolog`)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

# Loaded on first use so that `import autolog` stays cheap and imports no ML library.
_LAZY = {
    "autolog": ("autolog.integration", "autolog"),
    "load_model": ("autolog.models", "load_model"),
    "last_logged_model": ("autolog.logged_models", "last_logged_model"),
    "register_model": ("autolog.registry", "register_model"),
    "infer_signature": ("autolog.signature", "infer_signature"),
    "ModelSignature": ("autolog.signature", "ModelSignature"),
}


def __getattr__(name: str) -> Any:
    if name == "data":  # autolog.data.from_pandas & co.: numpy/pandas load on first call
        return importlib.import_module("autolog.data")
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    if name == "pyfunc":  # MLflow's mlflow.pyfunc.load_model / spark_udf, imported on use
        return importlib.import_module("autolog.pyfunc")
    if not name.startswith("_"):  # autolog.<integration>: any discovered through entry points
        integration = importlib.import_module("autolog.integration")
        if name in integration.names():
            return importlib.import_module(integration.module_name(name))
    raise AttributeError(f"module 'autolog' has no attribute {name!r}")


__all__ = [
    "ActiveRun",
    "AutologError",
    "Client",
    "MlflowClient",
    "MlflowException",
    "ModelSignature",
    "active_run",
    "autolog",
    "create_experiment",
    "data",
    "delete_tag",
    "end_run",
    "get_artifact_uri",
    "get_experiment_by_name",
    "get_metric_history",
    "get_run",
    "get_tracking_uri",
    "infer_signature",
    "last_active_run",
    "last_logged_model",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_input",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "register_model",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]
