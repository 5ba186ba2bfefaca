"""Finding stores: the database file a tracking URI names (:func:`db_path_for_uri`), and the
existing stores near a path, so that a read command never creates one at a mistyped path and
its error can say where stores actually are."""

from __future__ import annotations

import os
from pathlib import Path

from store.errors import InvalidValueError, StoreNotFoundError

_DB_NAME = "autolog.db"


def stores_in(folder: Path) -> list[str]:
    """The stores directly in ``folder`` or one level below it (folders holding autolog.db,
    and *.db files), as paths to pass to --store."""
    found: list[str] = []
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return found
    if (folder / _DB_NAME).is_file():
        found.append(str(folder))
    for entry in entries:
        folder_store = entry.is_dir() and (entry / _DB_NAME).is_file()
        db_file = entry.is_file() and entry.suffix == ".db" and entry.name != _DB_NAME
        if folder_store or db_file:
            found.append(str(entry))
    return found


def nearby_stores(uri: str) -> list[str]:
    """Stores a user probably meant: in the current directory, next to the URI's path, and
    the one $AUTOLOG_TRACKING_URI names."""
    candidates: list[str] = []
    path = Path(uri.removeprefix("sqlite:///").removeprefix("file://"))
    for folder in (Path.cwd(), path.absolute().parent):
        candidates += stores_in(folder)
    env = os.environ.get("AUTOLOG_TRACKING_URI")
    if env:
        candidates.append(f"{env} ($AUTOLOG_TRACKING_URI)")
    return list(dict.fromkeys(candidates))


def missing_store_error(uri: str, db_path: Path) -> StoreNotFoundError:
    nearby = nearby_stores(uri)
    where = "; stores found nearby: " + ", ".join(nearby) if nearby else "; no store found nearby"
    return StoreNotFoundError(
        f"No autolog store at {uri} (no database file {db_path}){where}. Pass the right one "
        "with --store PATH or $AUTOLOG_TRACKING_URI; a store is created by the first logged run."
    )


def db_path_for_uri(uri: str) -> Path:
    """The database file a tracking URI names: sqlite:///path/file.db, a folder (its
    autolog.db), or the path of an existing database file itself (a natural guess)."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :].partition("?")[0])
    if uri.startswith("sqlite:"):
        raise InvalidValueError(
            f"Tracking URI {uri!r} is not understood; write sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db."
        )
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    if "://" in uri:
        raise InvalidValueError(
            f"Tracking URI {uri!r} uses a scheme autolog does not support; give a folder path or "
            "sqlite:///path/file.db."
        )
    path = Path(uri)
    return path if path.is_file() else path / "autolog.db"
