"""The browser UI over a store: ``autolog ui`` (see app.py, and docs/ui.md for the JSON API)."""

from autolog.ui.app import create_app
from autolog.ui.serve import PortInUseError, serve

__all__ = ["PortInUseError", "create_app", "serve"]
