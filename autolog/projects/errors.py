"""The error every project failure raises (MLflow calls it ExecutionException)."""

from __future__ import annotations

from autolog.errors import AutologError


class ProjectError(AutologError):
    """A project cannot be read, fetched, set up or run; the message names the cause and the fix."""


ExecutionException = ProjectError
