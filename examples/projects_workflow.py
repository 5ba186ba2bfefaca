"""A two-step workflow with MLflow Projects: the second step trains on what the first logged.

    python examples/projects_workflow.py     # then: autolog runs list / autolog ui

Each step is one run; the train step's `data` parameter is `runs:/<prepare run>/data`, which
`autolog run` downloads and passes as a local folder. Both run in this Python environment
(`env_manager="local"`); drop it to get the environment the project declares.
"""

import os

import autolog.projects

PROJECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "projects", "workflow")

prepare = autolog.projects.run(PROJECT, "prepare", {"rows": 40}, env_manager="local")
print("prepare:", prepare.run_id, prepare.get_status())

train = autolog.projects.run(
    PROJECT,
    "train",
    {"data": f"runs:/{prepare.run_id}/data", "C": 0.5},
    env_manager="local",
    synchronous=False,  # returns at once; wait() blocks until the step ends
)
ok = train.wait()
print("train:", train.run_id, train.get_status())
raise SystemExit(0 if ok else 1)
