"""Exceptions raised by the store. autolog.errors re-exports them under one tree."""

from __future__ import annotations


class AutologError(Exception):
    """Something autolog was asked to do cannot be done; the message says what and how to fix it."""


class StoreError(AutologError):
    """The tracking store could not complete the operation."""


class SearchSyntaxError(StoreError, ValueError):
    """The filter string is malformed at the given position."""

    def __init__(self, message: str, position: int | None = None, token: str | None = None):
        super().__init__(message)
        self.position = position
        self.token = token


class ArtifactPathError(StoreError, ValueError):
    """An artifact path leaves the run's artifact root (.., absolute path or link)."""


class ArtifactExistsError(ArtifactPathError):
    """A folder written whole found its place taken by another writer (nothing was changed)."""


class StoreNotFoundError(StoreError, LookupError):
    """No store exists at this tracking URI (a read never creates one); the message names nearby stores."""


class RunNotFoundError(StoreError, LookupError):
    """No run has this id."""


class ExperimentNotFoundError(StoreError, LookupError):
    """No experiment has this id or name."""


class LoggedModelNotFoundError(StoreError, LookupError):
    """No logged model has this id."""


class ArtifactStorageError(StoreError):
    """The object store could not be reached or refused a request. Its message (the bucket, the
    cause, what to check; never credentials) is what a tracking server's client is shown."""


class InvalidValueError(StoreError, ValueError):
    """A key, value or argument is not acceptable; the message names it and the fix."""


class ParamOverwriteError(InvalidValueError):
    """A param was logged again with a different value (params are immutable per run)."""


class RegistryError(StoreError):
    """A model registry operation failed."""


class RegisteredModelNotFoundError(RegistryError, LookupError):
    """No registered model, version or alias matches."""


class RegistryValueError(RegistryError, InvalidValueError):
    """A registered model name, version, alias, stage or tag is not acceptable; the message says why."""


class RegisteredModelExistsError(RegistryError):
    """A registered model with this name already exists."""
