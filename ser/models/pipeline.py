"""Recognizers that are a feature vector → one scikit-learn ``Pipeline`` (scaler + classifier).

Scaler and classifier are one object, saved whole (``model.skops``, loaded with an explicit list of
trusted types), so training and prediction cannot diverge. A kind names its feature extractor
(:meth:`PipelineRecognizer.features_of`) and the settings class it is configured by; the MLP
(:mod:`.mlp`) and the openSMILE model (:mod:`.smile`) are the two kinds.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import skops.io as sio

from ..errors import ModelError
from ..hub.artifacts import load_pipeline
from .base import Recognizer

__all__ = ["PipelineRecognizer"]


class PipelineRecognizer(Recognizer):
    """A clip's feature vector through a fitted ``Pipeline``; columns in ``labels`` order.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Fitted, with ``classes_`` the emotion names.
    features : settings of the kind's extractor, or their ``dict`` (from ``config.json``)
    """

    #: the settings class of this kind's feature extractor (a frozen dataclass with ``to_dict``)
    feature_config: ClassVar[type]

    def __init__(self, pipeline, *, features=None, labels=None, audio=None, metadata=None,
                 temperature: float | None = None):
        labels = list(pipeline.classes_) if labels is None else labels
        super().__init__(labels=labels, audio=audio, metadata=metadata, temperature=temperature)
        self.pipeline = pipeline
        self.features = (features if isinstance(features, self.feature_config)
                         else self.feature_config(**(features or {})))
        classes = list(pipeline.classes_)
        if sorted(classes) != sorted(self.labels):
            raise ModelError(f"Pipeline classes {classes} do not match labels {self.labels}.")
        self._columns = [classes.index(lab) for lab in self.labels]

    def features_of(self, y: np.ndarray) -> np.ndarray:
        """The feature vector ``[n_features]`` of one loaded clip (each kind)."""
        raise NotImplementedError

    def raw_proba_batch(self, ys: Sequence[np.ndarray]) -> np.ndarray:
        return self.raw_proba_from_features(np.stack([self.features_of(y) for y in ys]))

    def raw_proba_from_features(self, X: np.ndarray) -> np.ndarray:
        """Uncalibrated probabilities ``[n, len(labels)]`` of feature rows ``X [n, n_features]``.

        The pipeline runs one row at a time: a matrix product over a batch rounds differently from
        one over a row (about 1e-7), and a clip's probabilities must not depend on which clips share
        its batch (a file's row in a batch CSV is exactly its ``ser.predict``). A row costs well under
        a millisecond, against tens of milliseconds for its features.
        """
        X = np.asarray(X)
        if not len(X):
            return np.zeros((0, len(self.labels)))
        return np.concatenate([self.pipeline.predict_proba(X[i:i + 1])[:, self._columns] for i in range(len(X))])

    def proba_from_features(self, X: np.ndarray) -> np.ndarray:
        """Probabilities ``[n, len(labels)]`` of feature rows, temperature-scaled when the model has
        a :attr:`temperature` (arg-max unchanged)."""
        return self.calibrated(self.raw_proba_from_features(X))

    def config(self) -> dict:
        return {**super().config(), "features": self.features.to_dict()}

    def _write(self, folder: Path) -> None:
        sio.dump(self.pipeline, folder / "model.skops")

    @classmethod
    def _read(cls, folder: Path, config: dict, metadata: dict) -> "PipelineRecognizer":
        return cls(load_pipeline(folder / "model.skops"), features=config.get("features"),
                   labels=config["labels"], audio=config.get("audio"), metadata=metadata,
                   temperature=config.get("temperature"))
