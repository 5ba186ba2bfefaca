"""The model registry: named models, numbered versions, aliases, stages, descriptions, lineage.

Register what a run logged, then refer to it by name::

    import autolog

    mv = autolog.register_model("runs:/<run_id>/model", "churn")    # version "1"
    client = autolog.Client()
    client.set_registered_model_alias("churn", "champion", mv.version)
    client.update_model_version("churn", mv.version, "Trained on **March** data.")
    client.transition_model_version_stage("churn", mv.version, "Production",
                                          archive_existing_versions=True)
    model = autolog.load_model("models:/churn@champion")            # or models:/churn/1,
                                                                    # models:/churn/Production,
                                                                    # models:/churn/latest

Or let autolog register every model it logs: every integration's ``autolog()`` takes
``registered_model_name``, e.g. ``autolog.sklearn.autolog(registered_model_name="churn")``.

Versions are numbered 1, 2, 3, ... per name, also when many processes register the same name
at once; a deleted version's number is never given again. A version records the URI it was
registered from (``source``, e.g. ``runs:/<run_id>/model``), its ``run_id`` and the model
directory (``storage_location``); ``Client().get_model_versions_for_run(run_id)`` lists the
versions made from a run. ``ModelVersion.version`` is a string, as in MLflow's entities; every
call accepts a version as an int or a string.

This module imports only the standard library at import time: :class:`autolog.tracking.Client`
inherits :class:`RegistryClientMixin` from it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from autolog.errors import RegisteredModelNotFoundError, RegistryValueError

# typing.TYPE_CHECKING without importing typing (about a fifth of `import autolog`)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from store.registry import STAGES, ModelVersion, RegisteredModel
    from store.sqlite import Store

__all__ = [
    "STAGES",
    "ModelVersion",
    "RegisteredModel",
    "RegistryClientMixin",
    "parse_models_uri",
    "register_model",
    "resolve_models_uri",
    "search_model_versions",
    "search_registered_models",
]

MODELS_SCHEME = "models:/"


def _rules() -> Any:
    """store.registry, imported on first use so that `import autolog` stays cheap."""
    import store.registry

    return store.registry


def __getattr__(name: str) -> Any:
    if name in ("STAGES", "ModelVersion", "RegisteredModel"):
        return getattr(_rules(), name)
    raise AttributeError(f"module 'autolog.registry' has no attribute {name!r}")


MLMODEL_FILE = "MLmodel"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


# -- models:/ URIs -------------------------------------------------------------------------


def parse_models_uri(uri: str) -> tuple[str, str, str | int | None]:
    """Split a ``models:/`` URI into ``(name, kind, value)``.

    kind is ``"version"`` (value an int), ``"alias"``, ``"stage"`` (canonical stage name) or
    ``"latest"`` (value None).

    :raises RegistryValueError: the URI is malformed; the message shows the accepted forms.
    """
    forms = "models:/<name>/<version>, models:/<name>@<alias>, models:/<name>/<stage> or models:/<name>/latest"
    if not isinstance(uri, str) or not uri.startswith(MODELS_SCHEME):
        raise RegistryValueError(f"Invalid model URI {uri!r}: expected {forms}.")
    rest = uri[len(MODELS_SCHEME) :].lstrip("/").rstrip("/")
    if "@" in rest:
        name, _, alias = rest.partition("@")
        if not name or not alias or "/" in alias or "/" in name:
            raise RegistryValueError(f"Invalid model URI {uri!r}: expected {forms}.")
        return _rules().check_model_name(name), "alias", alias
    name, sep, ref = rest.partition("/")
    if not sep or not name or not ref or "/" in ref:
        raise RegistryValueError(f"Invalid model URI {uri!r}: expected {forms}.")
    _rules().check_model_name(name)
    if ref.isdigit():
        return name, "version", _rules().check_version(ref)
    if ref.lower() == "latest":
        return name, "latest", None
    try:
        return name, "stage", _rules().check_stage(ref)
    except RegistryValueError:
        pass
    if ref[:1] in "vV" and ref[1:].isdigit():
        hint = f"a version is a plain number: models:/{name}/{int(ref[1:])}"
    else:
        hint = f"for an alias write models:/{name}@{ref}"
    raise RegistryValueError(
        f"Invalid model URI {uri!r}: {ref!r} is neither a version number, 'latest' nor a "
        f"stage ({', '.join(_rules().STAGES)}); {hint}."
    )


def _version_for_uri(store: Store, uri: str) -> ModelVersion:
    name, kind, value = parse_models_uri(uri)
    if kind == "version":
        return store.get_model_version(name, _rules().check_version(value))
    if kind == "alias":
        return store.get_model_version_by_alias(name, str(value))
    if kind == "latest":
        latest = store.latest_version_number(name)
        if latest is None:
            raise RegisteredModelNotFoundError(
                f"Registered model {name!r} has no versions, so {uri!r} names nothing; register "
                f"one with autolog.register_model(model_uri, {name!r})."
            )
        return store.get_model_version(name, latest)
    found = store.get_latest_versions(name, [str(value)])
    if not found:
        raise RegisteredModelNotFoundError(
            f"Registered model {name!r} has no version in stage {value!r}; "
            f"{store.registry_summary(name)}. Move one there with "
            f"Client().transition_model_version_stage({name!r}, <version>, {value!r})."
        )
    return found[-1]


def resolve_models_uri(uri: str) -> Path:
    """The model directory a ``models:/`` URI names.

    :param uri: ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
        ``models:/<name>/<stage>`` (newest version in that stage) or ``models:/<name>/latest``.
    :raises RegisteredModelNotFoundError: no such model, version, alias or stage; the message
        names the model and lists what exists.
    :raises RegistryValueError: the URI is malformed.
    """
    return resolve_models_source(uri)[0]


def resolve_models_source(uri: str) -> tuple[Path, str]:
    """(model directory, the URI the version was registered from) of a ``models:/`` URI.

    The source (``runs:/<run_id>/<path>`` or a directory) tells the model loader whose
    recorded file digests vouch for the directory.
    """
    from pathlib import Path

    from autolog import logged_models, tracking

    _landed()
    store = tracking._store()
    mv = _version_for_uri(store, uri)
    if mv.source.startswith("runs:/") and mv.run_id:
        # through the run's artifacts: with an S3 artifact root the stored location is the
        # local cache of the machine that registered the version; this downloads afresh
        artifact_path = mv.source[len("runs:/") :].strip("/").partition("/")[2]
        return Path(store.artifact_local_path(mv.run_id, artifact_path)), mv.source
    if mv.storage_location is None and logged_models.is_logged_model_uri(mv.source):
        # registered by MLflow 3's client from the model it logged (models:/m-<hex>)
        owner, path = logged_models.resolve_logged_model_uri(store, mv.source)
        local = Path(store.artifact_local_path(owner, path))
        if logged_models.in_own_folder(owner):
            return local, mv.source
        return local, f"runs:/{owner}/{path}"
    if mv.storage_location is None and mv.run_id and mv.source.startswith("mlflow-artifacts:"):
        # registered by MLflow's client: the run's proxied artifact URI and a path in it
        _, found, path = mv.source.partition(f"/{mv.run_id}/artifacts/")
        if found and path:
            return store.artifact_local_path(mv.run_id, path), f"runs:/{mv.run_id}/{path}"
    if mv.storage_location is None:
        raise RegisteredModelNotFoundError(
            f"{uri!r} is version {mv.version} of {mv.name!r}, which has no storage location."
        )
    return Path(mv.storage_location), mv.source


# -- sources -------------------------------------------------------------------------------


def _resolve_source(store: Store, model_uri: Any) -> tuple[str, str | None, str]:
    """(source, run_id, model directory) of a URI to register; the directory must hold a model."""
    from pathlib import Path

    text = os.fspath(model_uri) if isinstance(model_uri, os.PathLike) else model_uri
    if not isinstance(text, str) or not text:
        raise RegistryValueError(
            f"Invalid model URI {model_uri!r}: give runs:/<run_id>/<path>, models:/<name>/<version> "
            "or a model directory."
        )
    run_id: str | None = None
    if text.startswith(MODELS_SCHEME):
        mv = _version_for_uri(store, text)
        return mv.source, mv.run_id, mv.storage_location or ""
    if text.startswith("runs:/"):
        from store.artifacts import check_relative

        run_id, _, artifact_path = text[len("runs:/") :].strip("/").partition("/")
        if not run_id:
            raise RegistryValueError(
                f"Malformed model URI {text!r}; expected runs:/<run_id>/<artifact_path>."
            )
        store.get_run(run_id)  # RunNotFoundError names the run
        artifact_path = check_relative(artifact_path)
        location = store.artifact_local_path(run_id, artifact_path)
        source = f"runs:/{run_id}/{artifact_path}" if artifact_path else f"runs:/{run_id}"
    elif text.startswith("file:"):
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        parsed = urlparse(text)
        location = Path(url2pathname(parsed.netloc + parsed.path)).absolute()
        source = text
    elif _SCHEME.match(text):
        raise RegistryValueError(
            f"Cannot register {text!r}: unsupported URI scheme; use runs:/<run_id>/<path>, "
            "models:/<name>/<version> or a local model directory."
        )
    else:
        location = Path(text).expanduser().absolute()
        source = str(location)
    if not (location / MLMODEL_FILE).is_file():
        raise RegistryValueError(
            f"No model at {text!r}: {location} has no {MLMODEL_FILE} file. Log the model first "
            "(an integration's log_model, or autolog.autolog()) and register its model_uri."
        )
    return source, run_id, str(location)


def _create_version(
    store: Store,
    model_uri: Any,
    name: str,
    tags: dict[str, Any] | None,
    description: str | None,
    run_id: str | None,
    run_link: str | None,
    create_model: bool,
) -> ModelVersion:
    from autolog import context, logged_models

    _rules().check_model_name(name)
    model_id = None
    if isinstance(model_uri, str) and logged_models.is_logged_model_uri(model_uri):
        # registered from its files in the run, whose recorded digests vouch for them
        model_id = model_uri.rstrip("/").split("/")[1]
        model_uri = "runs:/{}/{}".format(*logged_models.resolve_logged_model_uri(store, model_uri))
    source, source_run_id, location = _resolve_source(store, model_uri)
    version = store.create_model_version(
        name,
        source,
        run_id=run_id or source_run_id,
        storage_location=location,
        tags=tags,
        description=description,
        user_id=context.current_user(),
        run_link=run_link,
        create_model=create_model,
    )
    model_id = model_id or logged_models.model_id_of_source(store, source)
    if model_id is not None:
        logged_models.set_model_version_tag(store, model_id, name, version.version)
    return version


# -- the fluent functions ------------------------------------------------------------------


def register_model(
    model_uri: str | os.PathLike[str],
    name: str,
    await_registration_for: int = 300,
    *,
    tags: dict[str, Any] | None = None,
) -> ModelVersion:
    """Register a logged model as the next version of ``name`` (creating the name if new).

    :param model_uri: ``runs:/<run_id>/<artifact_path>`` (what ``log_model`` returns as
        ``model_info.model_uri``), ``models:/<name>/<version>`` (copy a version) or a local
        model directory.
    :param name: the registered model's name (no ``/``, ``:`` or ``@``; at most 256 characters).
    :param await_registration_for: accepted for MLflow compatibility; registration here is
        immediate.
    :param tags: tags of the new version.
    :return: the new :class:`ModelVersion` (``version`` "1" for a new name, then "2", ...).
    :raises RegistryValueError: invalid name, or no model at ``model_uri``.
    """
    from autolog import tracking

    _landed()  # a model an integration still saves in the background
    return _create_version(tracking._store(), model_uri, name, tags, None, None, None, True)


def search_registered_models(
    filter_string: str | None = None,
    max_results: int | None = 100,
    order_by: list[str] | None = None,
) -> list[RegisteredModel]:
    """Registered models matching a filter (see :meth:`RegistryClientMixin.search_registered_models`)."""
    from autolog import tracking

    _landed()
    return tracking._store().search_registered_models(filter_string, max_results, order_by)


def search_model_versions(
    filter_string: str | None = None,
    max_results: int | None = 10_000,
    order_by: list[str] | None = None,
) -> list[ModelVersion]:
    """Model versions matching a filter (see :meth:`RegistryClientMixin.search_model_versions`)."""
    from autolog import tracking

    _landed()
    return tracking._store().search_model_versions(filter_string, max_results, order_by)


def _need_key(key: str | None) -> str:
    if not isinstance(key, str) or not key:
        raise RegistryValueError(f"Invalid tag key {key!r}: give the tag's name as a string.")
    return key


def _landed() -> None:
    """Wait for what integrations still log in the background (autolog.batching.defer): a
    version registered with the model a fit saves after it returns (``registered_model_name``)."""
    from autolog.tracking_client import before_read

    before_read(None)


# -- the Client methods --------------------------------------------------------------------


class RegistryClientMixin:
    """The model registry methods of :class:`autolog.Client` (MLflow's MlflowClient names)."""

    if TYPE_CHECKING:

        @property
        def store(self) -> Store: ...

    # registered models

    def create_registered_model(
        self, name: str, tags: dict[str, Any] | None = None, description: str | None = None
    ) -> RegisteredModel:
        """Create an empty registered model.

        :param name: unique name (no ``/``, ``:`` or ``@``).
        :param tags: tags of the model.
        :param description: Markdown text.
        :raises RegisteredModelExistsError: the name is taken.
        """
        return self.store.create_registered_model(name, tags, description)

    def get_registered_model(self, name: str) -> RegisteredModel:
        """The model with its tags, aliases and newest version per stage."""
        _landed()
        return self.store.get_registered_model(name)

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int | None = 100,
        order_by: list[str] | None = None,
    ) -> list[RegisteredModel]:
        """Registered models matching a filter, by name unless ``order_by`` says otherwise.

        :param filter_string: e.g. ``"name LIKE 'churn%'"``, ``"tags.team = 'risk'"``; names:
            name, description, creation_timestamp, last_updated_timestamp, tags.<key>;
            operators as in ``search_runs`` (AND, OR, parentheses, LIKE, ILIKE, IN, IS NULL).
        :param max_results: at most this many (None: all).
        :param order_by: e.g. ``["last_updated_timestamp DESC"]``.
        :raises SearchSyntaxError: the filter is malformed (position and token named).
        """
        _landed()
        return self.store.search_registered_models(filter_string, max_results, order_by)

    def update_registered_model(self, name: str, description: str | None = None) -> RegisteredModel:
        """Set the model's Markdown description (None clears it)."""
        return self.store.update_registered_model(name, description)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a model; its versions, tags and aliases follow.

        :raises RegisteredModelExistsError: ``new_name`` is taken.
        """
        return self.store.rename_registered_model(name, new_name)

    def delete_registered_model(self, name: str) -> None:
        """Delete a model with all its versions, tags and aliases (run artifacts stay)."""
        self.store.delete_registered_model(name)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self.store.set_registered_model_tag(name, key, value)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self.store.delete_registered_model_tag(name, key)

    # versions

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: dict[str, Any] | None = None,
        run_link: str | None = None,
        description: str | None = None,
    ) -> ModelVersion:
        """Add the next version of an existing registered model.

        :param name: the registered model (create it first, or use :func:`register_model`).
        :param source: ``runs:/<run_id>/<path>``, ``models:/...`` or a model directory.
        :param run_id: the run it came from (read from a ``runs:/`` source when omitted).
        :param tags: tags of the version.
        :param run_link: a link to the run, kept as given.
        :param description: Markdown text.
        """
        return _create_version(self.store, source, name, tags, description, run_id, run_link, False)

    def get_model_version(self, name: str, version: int | str) -> ModelVersion:
        _landed()
        return self.store.get_model_version(name, version)

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int | None = 10_000,
        order_by: list[str] | None = None,
    ) -> list[ModelVersion]:
        """Model versions matching a filter; by name, then newest version first by default.

        :param filter_string: e.g. ``"name = 'churn'"``, ``"run_id = '<id>'"``,
            ``"version_number > 2 and tags.validated = 'yes'"``, ``"current_stage = 'Production'"``;
            names: name, version_number, run_id, source_path, current_stage, status, user_id,
            description, creation_timestamp, last_updated_timestamp, tags.<key>.
        :param max_results: at most this many (None: all).
        :param order_by: e.g. ``["version_number DESC"]``, ``["creation_timestamp"]``.
        :raises SearchSyntaxError: the filter is malformed (position and token named).
        """
        _landed()
        return self.store.search_model_versions(filter_string, max_results, order_by)

    def get_model_versions_for_run(self, run_id: str) -> list[ModelVersion]:
        """Every version registered from this run (lineage run -> versions), oldest first."""
        _landed()
        return self.store.model_versions_of_run(run_id)

    def update_model_version(
        self, name: str, version: int | str, description: str | None = None
    ) -> ModelVersion:
        """Set a version's Markdown description (None clears it)."""
        return self.store.update_model_version(name, version, description)

    def _version_or_stage(self, name: str, version: int | str | None, stage: str | None) -> str:
        if version is not None:
            return str(_rules().check_version(version))
        if stage is None:
            raise RegistryValueError("Give a version (or a stage, for its newest version).")
        found = self.store.get_latest_versions(name, [stage])
        if not found:
            raise RegisteredModelNotFoundError(
                f"Registered model {name!r} has no version in stage {_rules().check_stage(stage)!r}."
            )
        return found[-1].version

    def set_model_version_tag(
        self,
        name: str,
        version: int | str | None = None,
        key: str | None = None,
        value: Any = None,
        stage: str | None = None,
    ) -> None:
        """Set a tag on a version (or on the newest version in ``stage``)."""
        self.store.set_model_version_tag(
            name, self._version_or_stage(name, version, stage), _need_key(key), value
        )

    def delete_model_version_tag(
        self,
        name: str,
        version: int | str | None = None,
        key: str | None = None,
        stage: str | None = None,
    ) -> None:
        self.store.delete_model_version_tag(
            name, self._version_or_stage(name, version, stage), _need_key(key)
        )

    def transition_model_version_stage(
        self,
        name: str,
        version: int | str,
        stage: str,
        archive_existing_versions: bool = False,
    ) -> ModelVersion:
        """Move a version to None, Staging, Production or Archived (case-insensitive).

        :param archive_existing_versions: move the versions already in ``stage`` to Archived
            (only for Staging and Production).
        :raises RegistryValueError: unknown stage.
        """
        return self.store.transition_model_version_stage(
            name, version, stage, archive_existing_versions
        )

    def delete_model_version(self, name: str, version: int | str) -> None:
        """Delete a version with its tags and the aliases pointing at it; its number stays used."""
        self.store.delete_model_version(name, version)

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """The newest version in each of ``stages`` (default: each stage in use)."""
        _landed()
        return self.store.get_latest_versions(name, stages)

    def get_model_version_download_uri(self, name: str, version: int | str) -> str:
        """The version's model directory."""
        return self.store.get_model_version(name, version).storage_location or ""

    def copy_model_version(self, src_model_uri: str, dst_name: str) -> ModelVersion:
        """Register the version behind ``src_model_uri`` (``models:/...``) under ``dst_name``."""
        return _create_version(self.store, src_model_uri, dst_name, None, None, None, None, True)

    # aliases

    def set_registered_model_alias(self, name: str, alias: str, version: int | str) -> None:
        """Point ``alias`` at ``version`` (moving it if it pointed elsewhere).

        :raises RegistryValueError: the alias looks like a version (``3``, ``v3``) or is
            ``latest``.
        """
        self.store.set_registered_model_alias(name, _rules().check_alias(alias), version)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self.store.delete_registered_model_alias(name, alias)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        _landed()
        return self.store.get_model_version_by_alias(name, alias)
