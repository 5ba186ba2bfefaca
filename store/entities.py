"""Plain records the store returns; shaped like MLflow's entities so user code reads the same."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# typing.TYPE_CHECKING without importing typing (about a fifth of `import autolog`)
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    timestamp: int
    step: int


@dataclass(frozen=True)
class Param:
    key: str
    value: str


@dataclass(frozen=True)
class RunTag:
    key: str
    value: str


@dataclass
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str | None
    status: str
    start_time: int | None
    end_time: int | None
    user_id: str | None
    artifact_uri: str
    lifecycle_stage: str = "active"
    parent_run_id: str | None = None
    host: str | None = None
    pid: int | None = None

    @property
    def run_uuid(self) -> str:
        return self.run_id


@dataclass
class RunData:
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Dataset:
    """A dataset as a run input (MLflow's ``mlflow.entities.Dataset``): its identity is
    (experiment, name, digest); schema and profile are JSON text (or None)."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "digest": self.digest,
            "source_type": self.source_type,
            "source": self.source,
            "schema": self.schema,
            "profile": self.profile,
        }


@dataclass(frozen=True)
class InputTag:
    key: str
    value: str


@dataclass(frozen=True)
class DatasetInput:
    """A dataset a run used, with its tags (``mlflow.data.context``: training, eval, ...)."""

    dataset: Dataset
    tags: list[InputTag] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.to_dict(),
            "tags": [{"key": t.key, "value": t.value} for t in self.tags],
        }


@dataclass
class RunInputs:
    dataset_inputs: list[DatasetInput] = field(default_factory=list)


@dataclass(frozen=True)
class LoggedModelOutput:
    """A logged model a run produced, and the step it was logged at (MLflow 3's ModelOutput)."""

    model_id: str
    step: int = 0


@dataclass
class RunOutputs:
    model_outputs: list[LoggedModelOutput] = field(default_factory=list)


@dataclass(frozen=True)
class DatasetRecord:
    """A dataset of one experiment as stored, with how many runs used it."""

    experiment_id: str
    dataset: Dataset
    run_count: int


@dataclass
class Run:
    info: RunInfo
    data: RunData
    inputs: RunInputs = field(default_factory=RunInputs)
    outputs: RunOutputs = field(default_factory=RunOutputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "info": {**self.info.__dict__},
            "data": {
                "params": dict(self.data.params),
                "metrics": {
                    k: (None if isinstance(v, float) and math.isnan(v) else v)
                    for k, v in self.data.metrics.items()
                },
                "tags": dict(self.data.tags),
            },
            "inputs": {"dataset_inputs": [d.to_dict() for d in self.inputs.dataset_inputs]},
            "outputs": {
                "model_outputs": [
                    {"model_id": m.model_id, "step": m.step} for m in self.outputs.model_outputs
                ]
            },
        }


@dataclass
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    creation_time: int | None = None
    last_update_time: int | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FileInfo:
    path: str
    is_dir: bool
    file_size: int | None


@dataclass(frozen=True)
class LoggedModelMetric(Metric):
    """A metric of a logged model: the run's value when the model was logged, and the dataset
    it was computed on (None when no dataset was recorded)."""

    run_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None
    model_id: str | None = None


@dataclass
class LoggedModel:
    """A model logged to an experiment (MLflow 3's ``mlflow.entities.LoggedModel`` fields).

    ``model_uri`` (``models:/<model_id>``) loads it; ``artifact_path`` is where its files lie
    in the source run's artifacts (``runs:/<source_run_id>/<artifact_path>`` names it too).
    """

    model_id: str
    experiment_id: str
    name: str
    artifact_location: str
    creation_timestamp: int
    last_updated_timestamp: int
    status: str = "PENDING"
    status_message: str | None = None
    model_type: str | None = None
    source_run_id: str | None = None
    artifact_path: str | None = None
    lifecycle_stage: str = "active"
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[LoggedModelMetric] = field(default_factory=list)

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_id}"

    @property
    def creation_time(self) -> int:
        return self.creation_timestamp
