"""Which model serves: a thread-safe cache of loaded recognizers, and ``ser.predict``."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from .. import settings
from ..audio.io import AudioSource
from ..errors import ModelError
from .base import MODEL_KINDS, Prediction, Recognizer
from .speaker import SpeakerProfile

__all__ = ["ModelRegistry", "get_recognizer", "predict", "enroll"]


class ModelRegistry:
    """Thread-safe cache of loaded recognizers by kind, as the app serves them.

    A new model replaces the served one only through :meth:`set`, after it is fully saved, so
    concurrent predictions always see a complete model.
    """

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else settings.models_dir()
        self._models: dict[str, Recognizer] = {}
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {k: threading.Lock() for k in MODEL_KINDS}

    def get(self, kind: str) -> Recognizer:
        """The served recognizer of a kind, loaded on first use."""
        if kind not in MODEL_KINDS:
            raise ModelError(f"Unknown model {kind!r}; choose one of {', '.join(MODEL_KINDS)}.")
        rec = self._models.get(kind)
        if rec is not None:
            return rec
        with self._loading[kind]:  # one loader per kind; others wait instead of loading twice
            rec = self._models.get(kind)
            if rec is None:
                rec = self._load(kind)
                with self._lock:
                    self._models[kind] = rec
        return rec

    def _load(self, kind: str, version: str | None = None) -> Recognizer:
        folder = self.root / kind
        if not folder.exists():
            raise ModelError(f"No {kind} model is saved in {self.root}; train one with `ser train {kind}`.")
        return Recognizer.from_pretrained(folder, version=version)

    def set(self, kind: str, recognizer: Recognizer) -> None:
        with self._lock:
            self._models[kind] = recognizer

    def use_version(self, kind: str, version: str | None) -> Recognizer:
        """Serve a saved version (``None``: the newest)."""
        rec = self._load(kind, version)
        self.set(kind, rec)
        return rec

    def loaded(self) -> dict[str, str]:
        return {k: str(r.metadata.get("version", "")) for k, r in self._models.items()}


_DEFAULT: ModelRegistry | None = None
_DEFAULT_LOCK = threading.Lock()


def get_recognizer(model: "str | os.PathLike | Recognizer" = "mlp", *,
                   registry: ModelRegistry | None = None) -> Recognizer:
    """The recognizer for ``model``: a loaded one as it is, a kind (``"mlp"``, ``"cnn"``,
    ``"ensemble"``) from ``registry`` (default: one over :func:`ser.settings.models_dir`), or a
    model folder."""
    global _DEFAULT
    if isinstance(model, Recognizer):
        return model
    model = str(model)
    if model not in MODEL_KINDS:
        return Recognizer.from_pretrained(model)
    if registry is None:
        with _DEFAULT_LOCK:
            if _DEFAULT is None or _DEFAULT.root != settings.models_dir():
                _DEFAULT = ModelRegistry()
            registry = _DEFAULT
    return registry.get(model)


def predict(audio: AudioSource, model: str = "mlp", *, threshold: float | None = None,
            speaker: "SpeakerProfile | str | os.PathLike | None" = None) -> Prediction:
    """Predict the emotion of ``audio`` with a saved model (``"mlp"``, ``"cnn"``, ``"smile"``, ``"ensemble"``).

    ``speaker``: a profile from :func:`enroll` (or the path of its JSON) to adapt to that speaker;
    the prediction is then marked ``adapted``. A model not trained for it raises ``ModelError``.

    Examples
    --------
    >>> import ser
    >>> p = ser.predict("clip.wav", model="mlp")  # doctest: +SKIP
    >>> p.label, round(p.confidence, 2), p.probabilities["calm"]  # doctest: +SKIP
    >>> me = ser.enroll(["me1.wav", "me2.wav", "me3.wav", "me4.wav"], model="smile")  # doctest: +SKIP
    >>> ser.predict("clip.wav", model="smile", speaker=me).adapted  # doctest: +SKIP
    True
    """
    return get_recognizer(model).predict(audio, threshold=threshold, speaker=speaker)


def enroll(clips, model: "str | os.PathLike | Recognizer" = "smile", **kwargs) -> SpeakerProfile:
    """A speaker profile from a few unlabelled clips of one speaker (at least 4; 16 is the recipe's
    target), for ``model`` (a kind, a model folder or a loaded recognizer trained for adaptation).

    Keyword arguments go to :func:`ser.models.speaker.enroll` (``names``, ``add_to``, ``skip_unusable``).
    Save it with ``profile.save("me.json")``; use it with ``ser.predict(clip, model=..., speaker=profile)``.

    Raises
    ------
    EnrolmentError
        Too few clips (the message says how many more) or unusable ones (named).
    ModelError
        The model cannot adapt to a speaker.
    """
    return get_recognizer(model).enroll(clips, **kwargs)
