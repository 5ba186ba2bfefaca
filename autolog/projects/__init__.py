"""MLflow Projects for autolog: package code with an MLproject file, run it tracked, reproduce it.

    autolog run ./my-project -e train -P alpha=0.5            # or a git URL, #subdirectory
    autolog run ./my-project --version 3f2c1a9 --env-manager virtualenv

    import autolog.projects
    first = autolog.projects.run(".", "prepare", {"rows": 100})
    second = autolog.projects.run(".", "train", {"data": f"runs:/{first.run_id}/data"},
                                  synchronous=False)
    second.wait()

The MLproject format, parameter types and the environment variables given to the entry point
are MLflow's (see docs/projects.md). Entry points that call ``autolog.autolog()`` or
``autolog.start_run()`` log into the run `autolog run` created.
"""

from __future__ import annotations

from autolog.projects.errors import ExecutionException, ProjectError
from autolog.projects.runner import SubmittedRun, reproduce_command, run
from autolog.projects.spec import EntryPoint, Parameter, Project, load_project

__all__ = [
    "EntryPoint",
    "ExecutionException",
    "Parameter",
    "Project",
    "ProjectError",
    "SubmittedRun",
    "load_project",
    "reproduce_command",
    "run",
]
