"""ser: speech emotion recognition that says which emotion a voice carries, and shows why.

>>> import ser
>>> ser.predict("clip.wav", model="mlp").label  # doctest: +SKIP
'calm'
>>> me = ser.enroll(["me1.wav", "me2.wav", "me3.wav", "me4.wav"], model="smile")  # doctest: +SKIP
>>> ser.predict("clip.wav", model="smile", speaker=me).adapted  # doctest: +SKIP
True

Layers, each importing only from those above it in this list:

- ``errors``, ``settings``, ``cluster``, ``plots``: the exception family, every ``SER_*`` setting,
  where parallel work runs, every figure;
- ``audio``: decoding and validation, VAD, degradations and augmentation, corpora;
- ``features``: the shared STFT, handcrafted features, log-mel images, signal mathematics;
- ``reports``, ``hub``: stored studies; versioned verified model folders, model cards, Hub transfer;
- ``models``: one recognizer per kind with one batch inference path; calibration, explanations;
- ``training``: protocols and folds, training runs, cross-corpus studies;
- ``serving``: what the app serves (service, timeline, live stream, batch), presentation;
- ``cli``: the ``ser`` command.

``import ser`` is cheap: the names below that need scikit-learn are loaded on first use, and
TensorFlow only when a CNN is.
"""

import os as _os

# numba (under librosa) compiles for the host CPU by default. On virtual AMD CPUs whose LLVM detection
# reports CET shadow stacks that the kernel has not enabled, librosa.yin's kernel segfaults, taking
# the app down with it; code for generic x86-64 runs everywhere, and these kernels are small (the
# features time the same). Must be set before numba is imported; an explicit NUMBA_CPU_NAME wins.
_os.environ.setdefault("NUMBA_CPU_NAME", "generic")

from .audio.corpora import EMOTIONS  # noqa: E402
from .audio.io import SAMPLE_RATE, load_audio  # noqa: E402
from .errors import AudioError, DataError, EnrolmentError, ModelError, SerError  # noqa: E402

__version__ = "0.2.0"
__all__ = [
    "EMOTIONS", "SAMPLE_RATE", "load_audio", "predict", "enroll", "SpeakerProfile", "Recognizer", "Prediction",
    "get_recognizer", "SerError", "AudioError", "DataError", "ModelError", "EnrolmentError", "__version__",
]


def __getattr__(name: str):
    """Lazy re-exports (PEP 562): ``ser.predict`` and friends import the models layer on first use."""
    if name in ("predict", "enroll", "SpeakerProfile", "Recognizer", "Prediction", "get_recognizer"):
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module 'ser' has no attribute {name!r}")
