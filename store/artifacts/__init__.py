"""Artifact repositories: a local folder now (:mod:`store.artifacts.local`); HTTP and S3 later."""

from store.artifacts.local import (
    PARTIAL_PREFIX,
    TEMP_PREFIX,
    ArtifactRoot,
    check_relative,
    is_hidden,
)

__all__ = ["PARTIAL_PREFIX", "TEMP_PREFIX", "ArtifactRoot", "check_relative", "is_hidden"]
