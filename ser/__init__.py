"""ser: speech emotion recognition that says which emotion a voice carries, and shows why.

>>> import ser
>>> ser.predict("clip.wav", model="mlp").label  # doctest: +SKIP
'calm'

Submodules import their heavy dependencies lazily: ``import ser`` is cheap and never imports
TensorFlow; the CNN path imports it on first use.
"""

from .audio import SAMPLE_RATE, load_audio
from .corpora import EMOTIONS
from .errors import AudioError, DataError, ModelError, SerError

__version__ = "0.1.0"
__all__ = [
    "EMOTIONS", "SAMPLE_RATE", "load_audio", "predict", "Recognizer", "Prediction",
    "SerError", "AudioError", "DataError", "ModelError", "__version__",
]


def __getattr__(name):  # lazy: the recognizer pulls in scikit-learn
    if name in ("predict", "Recognizer", "Prediction", "get_recognizer"):
        from . import recognizer

        return getattr(recognizer, name)
    raise AttributeError(f"module 'ser' has no attribute {name!r}")
