"""Artifact repositories: a local folder now (:mod:`store.artifacts.local`); HTTP and S3 later."""

from store.artifacts.local import ArtifactRoot, check_relative

__all__ = ["ArtifactRoot", "check_relative"]
