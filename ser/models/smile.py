"""The openSMILE model: ComParE_2016 + eGeMAPSv02 functionals (:mod:`ser.features.smile`) →
``Pipeline(StandardScaler, LogisticRegression)``, strongly regularised.

6 461 functionals of a few hundred clips per speaker fold call for a linear model with a strong L2
penalty (``C`` about 0.003-0.03 is flat on RAVDESS's EmoBox folds); training is
:func:`ser.training.smile.train_smile`. Licence of the features: audEERING's research licence
(non-commercial use), stated in the model card.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..features.smile import SmileConfig, smile_features
from .pipeline import PipelineRecognizer

__all__ = ["DEFAULT_C", "make_smile_pipeline", "SmileRecognizer"]

#: L2 penalty of the regression (inverse strength); chosen per training side by grouped search.
DEFAULT_C = 0.01


def make_smile_pipeline(*, C: float = DEFAULT_C, random_state: int = 0) -> Pipeline:
    """``Pipeline([("scaler", StandardScaler()), ("clf", LogisticRegression(C=C))])``."""
    return Pipeline([("scaler", StandardScaler()),
                     ("clf", LogisticRegression(C=C, max_iter=3000, random_state=random_state))])


class SmileRecognizer(PipelineRecognizer):
    """openSMILE functionals → ``Pipeline(StandardScaler, LogisticRegression)``."""

    kind = "smile"
    feature_config = SmileConfig

    def features_of(self, y: np.ndarray) -> np.ndarray:
        """The functionals ``[n_features]`` of one loaded clip."""
        return smile_features(y, config=self.features)
