"""drift.json, the one shape the drift job writes and the service reads (pydantic only: the
service reads it without Evidently or pandas). `created_at` lets an alert tell a stale report."""

from __future__ import annotations

from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from ..errors import PipelineError


class DriftSummaryError(PipelineError):
    """drift.json is missing or not a drift summary."""


class FeatureDrift(BaseModel):
    score: float = Field(description="Evidently's drift score: a p-value or a distance (method)")
    method: str = Field(description="The test, e.g. `K-S p_value` or `Wasserstein distance`")
    threshold: float
    drifted: bool = Field(description="The verdict of Evidently's test for this feature")


class Quality(BaseModel):
    """Accuracy on the predictions whose true label is known, against the reference's."""

    labelled_rows: int = Field(ge=0)
    accuracy: float = Field(ge=0, le=1)
    reference_accuracy: float = Field(ge=0, le=1, description="The served model on the test split")


class DriftSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    created_at: AwareDatetime
    current_source: str = Field(description="Where the compared inputs came from")
    current_rows: int = Field(ge=0)
    reference_rows: int = Field(ge=0)
    model_versions: list[int] = Field(description="Model versions that answered the rows")
    drift_share: float = Field(ge=0, le=1, description="Share of the features that drifted")
    drift_share_threshold: float = Field(gt=0, le=1)
    dataset_drift: bool = Field(description="Evidently's verdict on the share of drifted features")
    features: dict[str, FeatureDrift]
    text_measures: dict[str, FeatureDrift] = Field(
        default_factory=dict,
        description="Each text feature's length in characters and in words (`<name>: words`): "
        "drift beside the features', not counted in the share",
    )
    quality: Quality | None = Field(default=None, description="None without ground truth")

    @property
    def drifted_features(self) -> list[str]:
        return [name for name, feature in self.features.items() if feature.drifted]


def read_summary(path: Path) -> DriftSummary:
    try:
        return DriftSummary.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise DriftSummaryError(f"{path} does not exist: run `make drift`") from None
    except OSError as error:
        raise DriftSummaryError(f"cannot read {path}: {error.strerror or error}") from None
    except ValidationError as error:
        raise DriftSummaryError(
            f"{path} is not a drift summary: {error.errors()[0]['msg']}"
        ) from None


def write_summary(path: Path, summary: DriftSummary) -> None:
    """Replace `path` at once (write, then rename): a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
