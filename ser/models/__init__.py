"""Inference objects, one per model kind, and what they share.

``base`` (the :class:`Recognizer` contract: load, one batch inference path, save/load/push),
``pipeline`` (feature vector → scikit-learn pipeline), ``mlp``, ``smile`` (openSMILE + regression), ``cnn`` (TensorFlow imported on first use only), ``ensemble``, ``calibration``
(temperature scaling), ``explain`` (attributions), ``speaker`` (per-speaker normalisation; enrolment and speaker profiles),
``registry`` (which model serves; ``predict``).
"""

from . import cnn, ensemble, mlp, smile  # noqa: F401  (each registers its kind with Recognizer)
from .base import MODEL_KINDS, Prediction, Recognizer
from .registry import ModelRegistry, enroll, get_recognizer, predict
from .speaker import SpeakerProfile

__all__ = ["MODEL_KINDS", "Prediction", "Recognizer", "ModelRegistry", "get_recognizer", "predict", "enroll",
           "SpeakerProfile"]
