"""The MLP: handcrafted features → one scikit-learn ``Pipeline(StandardScaler, MLPClassifier)``.

Scaler and network are one object, saved whole (``model.skops``), so training and prediction
cannot diverge. Its grouped hyperparameter search is training's business
(:func:`ser.training.mlp.search_params`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import joblib
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder, StandardScaler

from ..features.handcrafted import FeatureConfig, extract
from .pipeline import PipelineRecognizer

__all__ = ["DEFAULT_PARAMS", "SEARCH_SPACE", "make_pipeline", "fit_pipeline", "MLPRecognizer"]

#: Defaults of the network (the search may change them).
DEFAULT_PARAMS: dict = {
    "hidden_layer_sizes": (256, 128),
    "alpha": 1e-2,
    "learning_rate_init": 1e-3,
    "batch_size": 128,
}
#: Candidates of the grouped search (``Pipeline`` parameter names without the ``mlp__`` prefix).
SEARCH_SPACE: dict = {
    "hidden_layer_sizes": [(256,), (256, 128), (512, 256)],
    "alpha": [1e-3, 1e-2, 1e-1, 1.0],
    "learning_rate_init": [1e-3, 3e-4],
    "batch_size": [64, 256],
}


def make_pipeline(*, random_state: int = 0, max_iter: int = 300, early_stopping: bool = True, **params):
    """``Pipeline([("scaler", StandardScaler()), ("mlp", MLPClassifier(...))])``.

    ``params`` override :data:`DEFAULT_PARAMS`; early stopping holds out 10 % of the training rows.
    """
    unknown = set(params) - set(DEFAULT_PARAMS)
    if unknown:
        raise ValueError(f"Unknown MLP parameters {sorted(unknown)}; expected {sorted(DEFAULT_PARAMS)}.")
    p = {**DEFAULT_PARAMS, **params}
    p["hidden_layer_sizes"] = tuple(p["hidden_layer_sizes"])
    mlp = MLPClassifier(**p, max_iter=max_iter, early_stopping=early_stopping, validation_fraction=0.1,
                        n_iter_no_change=15, random_state=random_state)
    return Pipeline([("scaler", StandardScaler()), ("mlp", mlp)])


def fit_pipeline(X: np.ndarray, y: Sequence[str], *, random_state: int = 0, **params):
    """Fit :func:`make_pipeline` on rows ``X [shape=(n, n_features)]`` with string labels ``y``."""
    model = make_pipeline(random_state=random_state, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # early stopping decides, not max_iter
        model.fit(X, np.asarray(y))
    return model



class MLPRecognizer(PipelineRecognizer):
    """Handcrafted features (:mod:`ser.features.handcrafted`) → ``Pipeline(StandardScaler, MLPClassifier)``."""

    kind = "mlp"
    feature_config = FeatureConfig

    def features_of(self, y: np.ndarray) -> np.ndarray:
        """The feature vector ``[n_features]`` of one loaded clip."""
        return extract(y, config=self.features)

    def _write(self, folder: Path) -> None:
        super()._write(folder)
        # The seed's file names, for scripts written against it; never loaded by ser itself.
        joblib.dump(self.pipeline.named_steps["mlp"], folder / "emotion_model.pkl")
        joblib.dump(self.pipeline.named_steps["scaler"], folder / "scaler.pkl")
        joblib.dump(LabelEncoder().fit(self.labels), folder / "label_encoder.pkl")
