"""Model artefacts on disk: skops files checked against their SHA-256 and a trusted-types list.

Never plain pickle: a model file is loaded only when its hash matches the registry and every
type in it is one this code expects, so a swapped or tampered file is refused before any of
its content runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import skops.io as sio
from scipy.special import expit
from sklearn.ensemble import HistGradientBoostingClassifier

from app.errors import DomainError, InvalidInputError
from app.risk.features import Vocabulary, feature_names

# Types inside a HistGradientBoostingClassifier that skops does not trust by default.
TRUSTED_TYPES = [
    "functools.partial",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
    # The logistic-regression scorer's pipeline stores its imputer's dtype.
    "numpy.dtype",
]
SCORERS = ("model", "logistic_regression", "prior_dna_rate")
PRIOR_RATE_PSEUDOCOUNT = 2.0
ARTEFACT_FILE = "model.skops"


class TamperedArtefactError(DomainError):
    status_code = 409
    code = "artefact_rejected"


@dataclass
class RiskArtefact:
    """A trained model with everything needed to score: features, categories, calibration."""

    classifier: HistGradientBoostingClassifier
    calibration: dict[str, float]  # sigmoid: {"a", "b"} on the logit of the raw score
    feature_names: list[str]
    include_ethnicity: bool
    vocabulary: Vocabulary
    reference: npt.NDArray[np.float64]  # a typical appointment: used to explain scores
    version: str
    # The features the classifier was fitted on (a subset of `feature_names`: those that
    # carried information in the training extract).
    used_features: list[str] = field(default_factory=list)
    # Which scorer ranks the queue: the model, or a simpler baseline that did better on the
    # validation period (the model still explains each score).
    scorer: str = "model"
    logistic: Any = None
    base_rate: float = 0.0
    # Per-group intercept recalibration (app/risk/recalibration.py): the audit attribute and
    # one logit offset per group; empty unless it was switched on and helped on the test.
    group_attribute: str = ""
    group_offsets: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.used_features:
            self.used_features = list(self.feature_names)

    @property
    def used_columns(self) -> list[int]:
        index = {name: i for i, name in enumerate(self.feature_names)}
        return [index[name] for name in self.used_features]

    def raw_logit(self, features: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        used = features[:, self.used_columns]
        return np.asarray(self.classifier.decision_function(used), dtype=float)

    def predict_proba(self, features: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Calibrated probability of a DNA for each row of `features` (the model)."""
        return calibrate(self.raw_logit(features), self.calibration)

    def risk(
        self, features: npt.NDArray[np.float64], logit: npt.NDArray[np.float64] | None = None
    ) -> npt.NDArray[np.float64]:
        """The active scorer's probability of a DNA for each row of `features`."""
        if self.scorer == "logistic_regression" and self.logistic is not None:
            used = features[:, self.used_columns]
            return np.asarray(self.logistic.predict_proba(used)[:, 1], dtype=float)
        if self.scorer == "prior_dna_rate":
            return prior_rate_scores(features, self.feature_names, self.base_rate)
        raw = self.raw_logit(features) if logit is None else logit
        return calibrate(raw, self.calibration)

    def to_payload(self) -> dict[str, Any]:
        return {
            "classifier": self.classifier,
            "calibration": dict(self.calibration),
            "feature_names": list(self.feature_names),
            "include_ethnicity": bool(self.include_ethnicity),
            "vocabulary": self.vocabulary.as_dict(),
            "reference": self.reference,
            "version": self.version,
            "used_features": list(self.used_features),
            "scorer": self.scorer,
            "logistic": self.logistic,
            "base_rate": float(self.base_rate),
            "group_attribute": self.group_attribute,
            "group_offsets": {str(k): float(v) for k, v in self.group_offsets.items()},
        }


def prior_rate_scores(
    features: npt.NDArray[np.float64], names: list[str], base_rate: float
) -> npt.NDArray[np.float64]:
    """The patient's earlier DNA rate, shrunk towards the trust's rate when they have few."""
    dna = features[:, names.index("n_prior_dna")]
    attended = features[:, names.index("n_prior_attended")]
    rate = (dna + PRIOR_RATE_PSEUDOCOUNT * base_rate) / (dna + attended + PRIOR_RATE_PSEUDOCOUNT)
    return np.asarray(rate, dtype=float)


def calibrate(
    logit: npt.NDArray[np.float64], calibration: dict[str, float]
) -> npt.NDArray[np.float64]:
    z = calibration["a"] * logit + calibration["b"]
    return np.asarray(expit(z), dtype=float)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_artefact(artefact: RiskArtefact, directory: Path) -> tuple[Path, str]:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ARTEFACT_FILE
    sio.dump(artefact.to_payload(), path)
    return path, sha256_of(path)


def load_artefact(path: Path, expected_sha256: str) -> RiskArtefact:
    """Load a registered artefact, refusing a missing, tampered or foreign file."""
    if not path.is_file():
        raise TamperedArtefactError(f"model file {path} is missing; retrain or activate another")
    if sha256_of(path) != expected_sha256:
        raise TamperedArtefactError(
            f"model file {path} does not match the SHA-256 recorded when it was trained; "
            "it has been changed or replaced and will not be loaded"
        )
    try:
        untrusted = set(sio.get_untrusted_types(file=path)) - set(TRUSTED_TYPES)
    except Exception as error:
        raise TamperedArtefactError(f"model file {path} is not a readable skops file") from error
    if untrusted:
        raise TamperedArtefactError(
            f"model file {path} contains unexpected types: {', '.join(sorted(untrusted))}"
        )
    payload = sio.load(path, trusted=TRUSTED_TYPES)
    names = list(payload["feature_names"])
    include_ethnicity = bool(payload["include_ethnicity"])
    if names != feature_names(include_ethnicity=include_ethnicity):
        raise InvalidInputError(
            "the model was trained on a different feature list than this version of Navigator "
            "builds; retrain the model (navigator train) before scoring"
        )
    vocabulary = payload["vocabulary"]
    return RiskArtefact(
        classifier=payload["classifier"],
        calibration={key: float(value) for key, value in payload["calibration"].items()},
        feature_names=names,
        include_ethnicity=include_ethnicity,
        vocabulary=Vocabulary(
            specialties=list(vocabulary["specialties"]), clinics=list(vocabulary["clinics"])
        ),
        reference=np.asarray(payload["reference"], dtype=float),
        version=str(payload["version"]),
        used_features=list(payload.get("used_features") or names),
        scorer=str(payload.get("scorer") or "model"),
        logistic=payload.get("logistic"),
        base_rate=float(payload.get("base_rate") or 0.0),
        group_attribute=str(payload.get("group_attribute") or ""),
        group_offsets={str(k): float(v) for k, v in (payload.get("group_offsets") or {}).items()},
    )
