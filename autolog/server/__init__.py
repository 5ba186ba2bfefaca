"""The team tracking server: MLflow's REST API, the artifact proxy and the UI over any store.

See docs/server.md. Importing this package imports no web framework (autolog.server.app does).
"""
