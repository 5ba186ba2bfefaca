"""The exception family. Every error autolog raises on purpose derives from AutologError.

AutologError
  StoreError
    SearchSyntaxError        malformed filter string (position and token named)
    StoreNotFoundError       a read found no store at the URI (nearby stores named)
    ArtifactPathError        artifact path outside the run's artifact root
    RunNotFoundError
    ExperimentNotFoundError
    LoggedModelNotFoundError no logged model has this id (models:/m-...)
    InvalidValueError
      ParamOverwriteError    a param logged twice with different values
    RegistryError
      RegisteredModelNotFoundError   no such registered model, version, alias or stage
      RegisteredModelExistsError     create_registered_model / rename onto a taken name
      RegistryValueError             bad model name, version, alias, stage (also InvalidValueError)
  TrackingError              misuse of the fluent API (e.g. nested run without nested=True)
  IntegrationError           an integration cannot be enabled
  ModelError                 a model directory cannot be written or read
    ModelLoadError           corrupted MLmodel, missing native file, unknown flavor
    SchemaEnforcementError   input does not match the model's signature
    SignatureInferenceError  no signature describes this data (type named)
"""

from __future__ import annotations

from store.errors import (
    ArtifactPathError,
    AutologError,
    ExperimentNotFoundError,
    InvalidValueError,
    LoggedModelNotFoundError,
    ParamOverwriteError,
    RegisteredModelExistsError,
    RegisteredModelNotFoundError,
    RegistryError,
    RegistryValueError,
    RunNotFoundError,
    SearchSyntaxError,
    StoreError,
    StoreNotFoundError,
)


class TrackingError(AutologError):
    """The fluent tracking API was used in a way it does not allow."""


class IntegrationError(AutologError):
    """An integration cannot be enabled."""


class ModelError(AutologError):
    """A model directory cannot be written or read."""


class ModelLoadError(ModelError):
    """The model at this path cannot be loaded; the message names the file and the cause."""


class SchemaEnforcementError(ModelError, ValueError):
    """The input does not match the model's signature."""


class SignatureInferenceError(ModelError, ValueError):
    """No signature describes this data; the message names the column and its type."""


class AutologWarning(UserWarning):
    """autolog skipped some logging; the user's training was not affected."""


MlflowException = AutologError

__all__ = [
    "ArtifactPathError",
    "AutologError",
    "AutologWarning",
    "ExperimentNotFoundError",
    "IntegrationError",
    "InvalidValueError",
    "LoggedModelNotFoundError",
    "MlflowException",
    "ModelError",
    "ModelLoadError",
    "ParamOverwriteError",
    "RegisteredModelExistsError",
    "RegisteredModelNotFoundError",
    "RegistryError",
    "RegistryValueError",
    "RunNotFoundError",
    "SchemaEnforcementError",
    "SearchSyntaxError",
    "SignatureInferenceError",
    "StoreError",
    "StoreNotFoundError",
    "TrackingError",
]
