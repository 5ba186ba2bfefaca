"""What the UI reads from the store: pages of runs, downsampled histories, artifacts, models.

Everything here only reads. Pages and the JSON API both build on these functions, so a page
shows exactly what the API returns.
"""

from __future__ import annotations

import csv
import json
import math
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store import system_tags
from store.base import TrackingStore as Store
from store.entities import Run
from store.errors import ArtifactPathError, InvalidValueError, RunNotFoundError

INTEGRATION_TAG = system_tags.AUTOLOGGING
RUN_NAME_TAG = system_tags.RUN_NAME
PARENT_RUN_TAG = system_tags.PARENT_RUN_ID
NOTE_TAG = system_tags.NOTE
# git facts: MLflow's names, plus autolog's for the local checkout
GIT_TAG_PREFIXES = ("mlflow.source.git.", "autolog.source.git.")
# Tags autolog (or MLflow) sets by itself; the rest are the user's.
SYSTEM_TAG_PREFIXES = ("autolog.", "mlflow.")
# Tags a runs table shows for every run; the rest are on the run page.
SUMMARY_TAGS = (
    INTEGRATION_TAG,
    system_tags.SOURCE_NAME,
    system_tags.USER,
    system_tags.GIT_COMMIT,
)
# Attributes a runs table can sort by (names of the search grammar).
SORTABLE_ATTRIBUTES = ("start_time", "end_time", "run_name", "status", "user_id", "experiment_id")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
DEFAULT_MAX_POINTS = 1000
MAX_MAX_POINTS = 20_000
MAX_COMPARE = 10
PREVIEW_BYTES = 256 * 1024
PREVIEW_ROWS = 200
TREE_LIMIT = 2000

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".svg"}
HTML_EXTENSIONS = {".html", ".htm"}
TABLE_EXTENSIONS = {".csv": ",", ".tsv": "\t"}


def number(value: float | None) -> float | str | None:
    """A JSON-safe metric value: finite floats as they are, NaN/inf as strings (JSON has none)."""
    if value is None:
        return None
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def format_value(value: Any) -> str:
    """A metric value for a table cell: 6 significant digits, nan/inf spelled out."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}"
    return str(value)


def duration_ms(run: Run, now_ms: int | None = None) -> int | None:
    start, end = run.info.start_time, run.info.end_time
    if start is None:
        return None
    if end is None:
        if run.info.status != "RUNNING" or now_ms is None:
            return None
        end = now_ms
    return max(0, end - start)


def run_dict(run: Run, all_tags: bool = True) -> dict[str, Any]:
    """A run as the API returns it; ``all_tags=False`` keeps user tags and the summary tags."""
    info = run.info
    tags = run.data.tags
    if not all_tags:
        tags = {
            k: v
            for k, v in tags.items()
            if k in SUMMARY_TAGS or not k.startswith(SYSTEM_TAG_PREFIXES)
        }
    return {
        "run_id": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "status": info.status,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "duration_ms": duration_ms(run),
        "user_id": info.user_id,
        "parent_run_id": info.parent_run_id,
        "lifecycle_stage": info.lifecycle_stage,
        "integration": run.data.tags.get(INTEGRATION_TAG),
        "params": dict(run.data.params),
        "metrics": {k: number(v) for k, v in run.data.metrics.items()},
        "tags": dict(tags),
    }


# -- experiments ------------------------------------------------------------------------


def experiments(store: Store) -> list[dict[str, Any]]:
    """Active experiments with their run counts and the start of their newest run."""
    counts = store.experiment_run_counts()
    out = []
    for e in store.list_experiments():
        n, last = counts.get(e.experiment_id, (0, None))
        out.append(
            {
                "experiment_id": e.experiment_id,
                "name": e.name,
                "lifecycle_stage": e.lifecycle_stage,
                "creation_time": e.creation_time,
                "last_update_time": e.last_update_time,
                "tags": dict(e.tags),
                "run_count": n,
                "last_run_time": last,
            }
        )
    return out


# -- runs -------------------------------------------------------------------------------


def sort_clause(sort: str, descending: bool) -> str:
    """An order_by entry of the search grammar for a column id like ``metrics.acc``.

    Keys are back-quoted, so any key (spaces, dots, backquotes) sorts.
    """
    kind, _, key = sort.partition(".")
    direction = "DESC" if descending else "ASC"
    if kind == "attributes" and key in SORTABLE_ATTRIBUTES:
        return f"attributes.{key} {direction}"
    if kind in ("params", "metrics", "tags") and key:
        return f"{kind}.`{key.replace('`', '``')}` {direction}"
    raise InvalidValueError(
        f"Cannot sort by {sort!r}; use params.<key>, metrics.<key>, tags.<key> or "
        f"attributes.<{'|'.join(SORTABLE_ATTRIBUTES)}>."
    )


@dataclass
class RunsPage:
    runs: list[Run]
    total: int | None  # None: not counted (more runs follow this page)
    offset: int
    limit: int
    param_keys: list[str]
    metric_keys: list[str]


def runs_page(
    store: Store,
    experiment_ids: Sequence[str] | None,
    filter_string: str = "",
    order_by: Sequence[str] | None = None,
    offset: int = 0,
    limit: int = DEFAULT_PAGE_SIZE,
    lifecycle_stage: str = "active",
    count: bool = True,
) -> RunsPage:
    """One page of matching runs plus the total count; both pages and paging are SQL-side.
    ``lifecycle_stage="deleted"`` pages through deleted runs instead. ``count=False`` leaves
    the total None when more runs follow (a count reads every match; the page needs 50)."""
    limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    offset = max(0, int(offset))
    order = list(order_by or [])
    ask = limit if count else limit + 1
    runs = store.search_runs(experiment_ids, filter_string, order, ask, offset, lifecycle_stage)
    total: int | None
    if not count:
        more = len(runs) > limit
        runs = runs[:limit]
        # the matches end on this page: they are counted; past the end, nobody knows yet
        total = None if more or (offset and not runs) else offset + len(runs)
    elif offset == 0 and len(runs) < limit:
        total = len(runs)
    else:
        total = store.count_runs(experiment_ids, filter_string, lifecycle_stage)
    params = sorted({k for r in runs for k in r.data.params})
    metrics = sorted({k for r in runs for k in r.data.metrics})
    return RunsPage(runs, total, offset, limit, params, metrics)


def run_children(store: Store, run_id: str) -> list[dict[str, Any]]:
    ids = store.child_run_ids(run_id)
    return [
        {"run_id": r.info.run_id, "run_name": r.info.run_name, "status": r.info.status}
        for r in store.get_runs(ids[:200])
    ]


# -- metric histories -------------------------------------------------------------------


def metric_history(
    store: Store,
    run_id: str,
    key: str,
    max_points: int = DEFAULT_MAX_POINTS,
    min_step: int | None = None,
    max_step: int | None = None,
) -> dict[str, Any]:
    """A metric's history, at most about ``max_points`` points, downsampled in SQL when longer.

    Up to ``max_points`` points come back as logged (with timestamps). A longer history is cut
    into ``max_points // 2`` step ranges and each range gives its min and max (NaN values
    skipped), so spikes and the envelope survive while only two numbers per range leave SQLite.
    """
    max_points = max(4, min(int(max_points), MAX_MAX_POINTS))
    sample = store.sampled_metric_history(run_id, key, max_points, min_step, max_step)
    return {
        "run_id": run_id,
        "key": key,
        **sample,
        "values": [number(v) for v in sample["values"]],
    }


# -- artifacts --------------------------------------------------------------------------


def artifact_file(store: Store, run_id: str, path: str) -> Path:
    """The local file of an artifact, refusing anything outside this run's artifact folder.

    The store's containment refuses ``..``, absolute paths and NUL bytes and resolves links
    against the artifact root; this adds that the real path stays inside the run's own folder.
    """
    return store.artifact_local_path(run_id, path)


def artifact_listing(store: Store, run_id: str, path: str = "") -> list[dict[str, Any]]:
    artifact_file(store, run_id, path)  # the folder itself must be inside
    return [
        {"path": f.path, "is_dir": f.is_dir, "file_size": f.file_size}
        for f in store.list_artifacts(run_id, path)
    ]


def artifact_tree(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Every artifact as nested dicts, folders first, links and unfinished writes skipped; at most
    TREE_LIMIT entries."""
    return store.walk_artifacts(run_id, TREE_LIMIT)


def artifact_kind(path: str) -> str:
    """image | html | table | text | binary, from the name (text vs binary sniffed later)."""
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in HTML_EXTENSIONS:
        return "html"
    if suffix in TABLE_EXTENSIONS:
        return "table"
    return "text"


def content_type(path: str) -> str:
    """The media type an artifact is served with; names without a known type are plain text."""
    guessed = mimetypes.guess_type(path)[0]
    if guessed is None:
        return (
            "text/plain; charset=utf-8"
            if "." not in Path(path).name
            else "application/octet-stream"
        )
    if guessed.startswith("text/") or guessed in ("application/json", "application/yaml"):
        return f"{guessed}; charset=utf-8"
    return guessed


def artifact_preview(store: Store, run_id: str, path: str) -> dict[str, Any]:
    """What the run page shows for a file: an image, a sandboxed page, a table or text."""
    file = artifact_file(store, run_id, path)
    if not file.is_file():
        raise FileNotFoundError(path)
    size = file.stat().st_size
    kind = artifact_kind(path)
    out: dict[str, Any] = {"path": path, "kind": kind, "size": size, "truncated": False}
    if kind in ("image", "html"):
        return out
    with open(file, "rb") as f:
        data = f.read(PREVIEW_BYTES + 1)
    out["truncated"] = len(data) > PREVIEW_BYTES
    data = data[:PREVIEW_BYTES]
    if b"\x00" in data[:8192]:
        out["kind"] = "binary"
        return out
    text = data.decode("utf-8", errors="replace")
    if kind == "table":
        delimiter = TABLE_EXTENSIONS[Path(path).suffix.lower()]
        lines = text.splitlines()
        if out["truncated"] and lines:
            lines = lines[:-1]  # the last line may be cut in the middle
        rows = []
        for row in csv.reader(lines, delimiter=delimiter):
            rows.append(row)
            if len(rows) > PREVIEW_ROWS:
                out["truncated"] = True
                rows = rows[:PREVIEW_ROWS]
                break
        out["rows"] = rows
        return out
    out["text"] = text
    return out


# -- models -----------------------------------------------------------------------------


def _native_loaders(flavors: list[str]) -> list[str]:
    """The integrations (``autolog.<name>.load_model``) that load these flavors natively."""
    from autolog import integration

    names = (integration.name_for_flavor(f) for f in flavors if f != "python_function")
    return [n for n in names if n is not None]


def _schema(text: Any) -> list[dict[str, Any]] | None:
    if not text:
        return None
    try:
        parsed = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return None
    if not isinstance(parsed, list):
        return None
    out = []
    for spec in parsed:
        if not isinstance(spec, dict):
            continue
        if spec.get("type") == "tensor":
            ts = spec.get("tensor-spec") or {}
            kind = f"tensor {ts.get('dtype')} {tuple(ts.get('shape') or ())}"
        else:
            kind = str(spec.get("type"))
        out.append({"name": spec.get("name"), "type": kind, "required": spec.get("required", True)})
    return out


def _read_mlmodel(folder: Path) -> dict[str, Any] | None:
    import yaml

    try:
        d = yaml.safe_load((folder / "MLmodel").read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return None
    return d if isinstance(d, dict) else None


def run_models(store: Store, run_id: str) -> list[dict[str, Any]]:
    """The models logged in a run: path, flavors, signature, and code that loads each."""
    found: dict[str, dict[str, Any]] = {}
    for row in store.list_models(run_id):
        found[row["artifact_path"]] = {
            "artifact_path": row["artifact_path"],
            "flavors": list(row["flavors"]),
            "signature": row["signature"],
            "created_time": row["created_time"],
            "model_id": row.get("model_id"),
        }
    # models saved by other tools (or before the models table) are found by their MLmodel file
    for entry in store.list_artifacts(run_id):
        if entry.is_dir and entry.path not in found:
            try:  # an MLmodel that is a link out of the run is not read
                mlmodel = store.artifact_local_path(run_id, f"{entry.path}/MLmodel")
            except ArtifactPathError:
                continue
            if mlmodel.is_file():
                d = _read_mlmodel(mlmodel.parent) or {}
                found[entry.path] = {
                    "artifact_path": entry.path,
                    "flavors": list((d.get("flavors") or {}).keys()),
                    "signature": d.get("signature"),
                    "created_time": None,
                    "model_id": None,
                }
    out = []
    for path, m in found.items():
        sig = m["signature"] or {}
        uri = f"runs:/{run_id}/{path}"
        native = _native_loaders(m["flavors"])
        code = f'import autolog\n\nmodel = autolog.load_model("{uri}")\npredictions = model.predict(data)'
        if native:
            code += f'\n\n# the native {native[0]} object\nnative = autolog.{native[0]}.load_model("{uri}")'
        out.append(
            {
                **m,
                "model_uri": uri,
                "inputs": _schema(sig.get("inputs")),
                "outputs": _schema(sig.get("outputs")),
                "load_code": code,
            }
        )
    return out


def logged_model_view(store: Store, model_id: str) -> dict[str, Any]:
    """A logged model's page: the record, its files, signature, load code and versions."""
    model = store.get_logged_model(model_id, allow_deleted=True)
    rid, path = model.source_run_id, model.artifact_path
    view: dict[str, Any] = {"model": model, "files": [], "versions": [], "entry": None}
    if rid is None or path is None:
        return view
    view["files"] = [f for f in store.list_artifacts(rid, path) if not f.is_dir]
    entry = next((m for m in run_models(store, rid) if m["artifact_path"] == path), None)
    if entry is not None:
        uri = model.model_uri
        entry = {**entry, "load_code": entry["load_code"].replace(entry["model_uri"], uri)}
    view["entry"] = entry
    source = f"runs:/{rid}/{path}"
    view["versions"] = [v for v in run_model_versions(store, rid) if v["source"] == source]
    return view


def logged_models(store: Store, limit: int = 500) -> list[dict[str, Any]]:
    """Every model logged in any active run, newest first."""
    return [
        {**m, "model_uri": f"runs:/{m['run_id']}/{m['artifact_path']}"}
        for m in store.logged_models(limit)
    ]


# -- registry (present once the store has it) -----------------------------------------


def has_registry(store: Store) -> bool:
    return hasattr(store, "search_registered_models") and hasattr(store, "search_model_versions")


def _version_dict(v: Any) -> dict[str, Any]:
    return {
        "name": v.name,
        "version": str(v.version),
        "current_stage": getattr(v, "current_stage", None),
        "status": getattr(v, "status", None),
        "source": getattr(v, "source", None),
        "run_id": getattr(v, "run_id", None),
        "description": getattr(v, "description", None),
        "aliases": list(getattr(v, "aliases", []) or []),
        "tags": dict(getattr(v, "tags", {}) or {}),
        "creation_timestamp": getattr(v, "creation_timestamp", None),
        "last_updated_timestamp": getattr(v, "last_updated_timestamp", None),
        "user_id": getattr(v, "user_id", None),
    }


def _model_dict(m: Any, versions: list[Any] | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": m.name,
        "description": getattr(m, "description", None),
        "creation_timestamp": getattr(m, "creation_timestamp", None),
        "last_updated_timestamp": getattr(m, "last_updated_timestamp", None),
        "tags": dict(getattr(m, "tags", {}) or {}),
        "aliases": {k: str(v) for k, v in (getattr(m, "aliases", {}) or {}).items()},
        "latest_versions": [_version_dict(v) for v in getattr(m, "latest_versions", []) or []],
    }
    if versions is not None:
        d["versions"] = [_version_dict(v) for v in versions]
    return d


def registered_models(store: Store, filter_string: str = "") -> list[dict[str, Any]]:
    models = store.search_registered_models(filter_string or None, max_results=1000)  # type: ignore[attr-defined]
    out = []
    for m in models:
        d = _model_dict(m)
        versions = [int(v["version"]) for v in d["latest_versions"]]
        d["latest_version"] = str(max(versions)) if versions else None
        out.append(d)
    return out


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def registered_model(store: Store, name: str) -> dict[str, Any]:
    model = store.get_registered_model(name)  # type: ignore[attr-defined]
    versions = store.search_model_versions(f"name = {_quote(name)}", order_by=["version DESC"])  # type: ignore[attr-defined]
    return _model_dict(model, versions)


def run_model_versions(store: Store, run_id: str) -> list[dict[str, Any]]:
    if not hasattr(store, "model_versions_of_run"):
        return []
    return [_version_dict(v) for v in store.model_versions_of_run(run_id)]


def check_run(store: Store, run_id: str) -> Run:
    """The run, or RunNotFoundError (also for ids that are not hex strings)."""
    if not run_id or len(run_id) > 64:
        raise RunNotFoundError(f"No run with id {run_id!r}.")
    return store.get_run(run_id)
