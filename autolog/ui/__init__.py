"""The browser UI over a store: ``autolog ui`` (see app.py, and docs/ui.md for the JSON API)."""

from autolog.ui.app import create_app, serve

__all__ = ["create_app", "serve"]
