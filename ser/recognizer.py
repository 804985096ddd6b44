"""Inference objects: load a saved model, apply exactly its saved preprocessing, predict.

``Recognizer.from_pretrained(path_or_repo)`` dispatches on ``config.json``'s ``model_type`` to
:class:`MLPRecognizer` (here), ``ser.cnn.CNNRecognizer`` or ``ser.ensemble.EnsembleRecognizer``
(imported only when needed, so the MLP path never imports TensorFlow).

Layers, as SpeechBrain's classifiers: :meth:`Recognizer.predict` takes any audio source (file,
bytes, Gradio tuple) and loads it with the model's own audio settings; :meth:`predict_proba`
takes a loaded 16 kHz array.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from . import artifacts
from .audio import MIN_VOICED_S, SAMPLE_RATE, TOP_DB, AudioSource, load_audio
from .errors import ModelError

__all__ = [
    "Prediction",
    "Recognizer",
    "MLPRecognizer",
    "ModelRegistry",
    "models_dir",
    "uncertain_below",
    "predict",
    "get_recognizer",
    "AUDIO_DEFAULTS",
    "MODEL_KINDS",
]

log = logging.getLogger(__name__)
AUDIO_DEFAULTS = {"sr": SAMPLE_RATE, "trim": True, "top_db": TOP_DB, "min_voiced_s": MIN_VOICED_S}
MODEL_KINDS = ("mlp", "cnn", "ensemble")
_IMPLEMENTATIONS = {"mlp": "ser.recognizer:MLPRecognizer", "cnn": "ser.cnn:CNNRecognizer",
                    "ensemble": "ser.ensemble:EnsembleRecognizer"}


def models_dir() -> Path:
    """Where models live: ``SER_MODELS_DIR`` or the project's bundled ``models/``."""
    return Path(os.environ.get("SER_MODELS_DIR", Path(__file__).resolve().parent.parent / "models"))


def uncertain_below() -> float:
    """Top probability under which a prediction is flagged uncertain (``SER_UNCERTAIN_BELOW``, 0.35)."""
    return float(os.environ.get("SER_UNCERTAIN_BELOW", 0.35))


@dataclass
class Prediction:
    """One prediction: the emotion, its probability, and every emotion's probability."""

    label: str
    confidence: float
    probabilities: dict[str, float]
    uncertain: bool = False
    model: str = ""
    version: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class Recognizer:
    """Base class: labels, saved preprocessing, and the predict / save / load trio."""

    kind: ClassVar[str] = ""

    def __init__(self, *, labels, audio: dict | None = None, metadata: dict | None = None,
                 temperature: float | None = None):
        self.labels = [str(x) for x in labels]
        self.audio = {**AUDIO_DEFAULTS, **(audio or {})}
        self.metadata = dict(metadata or {})
        self.path: Path | None = None
        self.warnings: list[str] = []
        #: Temperature of :mod:`ser.calibration` (fitted on held-out training-side predictions);
        #: ``None`` = the model's raw probabilities.
        self.temperature = None if temperature is None else float(temperature)

    def calibrated(self, proba: np.ndarray) -> np.ndarray:
        """``proba`` (``[..., len(labels)]``) scaled by :attr:`temperature`, if any (arg-max unchanged)."""
        if self.temperature is None:
            return proba
        from .calibration import apply_temperature

        return apply_temperature(proba, self.temperature)

    # -- inference -------------------------------------------------------------------------
    def load(self, audio: AudioSource) -> np.ndarray:
        """Load audio exactly as this model's training clips were loaded."""
        return load_audio(audio, sr=self.audio["sr"], trim=self.audio["trim"], top_db=self.audio["top_db"],
                          min_voiced_s=self.audio["min_voiced_s"])

    def predict_proba(self, y: np.ndarray) -> np.ndarray:
        """Probabilities ``[len(labels)]`` for one loaded clip (float32 mono at ``audio["sr"]``)."""
        raise NotImplementedError

    def predict(self, audio: AudioSource, *, threshold: float | None = None) -> Prediction:
        """Predict the emotion of a file path, bytes, or ``(sample_rate, samples)`` pair."""
        return self.predict_array(self.load(audio), threshold=threshold)

    def predict_array(self, y: np.ndarray, *, threshold: float | None = None) -> Prediction:
        from .cluster import one_blas_thread

        with one_blas_thread():  # one clip's matrices are small: a 2nd BLAS thread only spins (6x slower when busy)
            p = np.asarray(self.predict_proba(y), dtype=np.float64)
        best = int(p.argmax())
        threshold = uncertain_below() if threshold is None else threshold
        return Prediction(
            label=self.labels[best], confidence=float(p[best]),
            probabilities={lab: float(v) for lab, v in zip(self.labels, p)},
            uncertain=bool(p[best] < threshold), model=self.kind,
            version=str(self.metadata.get("version", "")), warnings=list(self.warnings),
        )

    # -- persistence -----------------------------------------------------------------------
    def config(self) -> dict:
        """Constructor arguments, stored as ``config.json``."""
        cfg = {"model_type": self.kind, "labels": self.labels, "audio": self.audio}
        if self.temperature is not None:
            cfg["temperature"] = self.temperature
        return cfg

    def _write(self, folder: Path) -> None:
        """Write the model's own files into ``folder`` (subclasses)."""
        raise NotImplementedError

    @classmethod
    def _read(cls, folder: Path, config: dict, metadata: dict) -> "Recognizer":
        raise NotImplementedError

    def save_pretrained(self, root: str | os.PathLike, *, metadata: dict | None = None) -> Path:
        """Save a new version under ``root`` atomically; returns the version folder."""
        meta = {**self.metadata, **(metadata or {}), "model": self.kind}

        def write(folder: Path) -> None:
            (folder / "config.json").write_text(json.dumps(self.config(), indent=2, sort_keys=True))
            self._write(folder)

        folder = artifacts.save_artifact(root, write, meta, card=_card_text)
        self.metadata = artifacts.read_metadata(folder)
        self.path = folder
        return folder

    @classmethod
    def from_pretrained(cls, path_or_repo: str | os.PathLike, *, version: str | None = None,
                        revision: str | None = None, **hub_kwargs) -> "Recognizer":
        """Load from a models folder (``models/mlp``), a version folder, or a Hub repo id.

        A local folder is verified file by file (sha256 from ``metadata.json``); if the newest
        version is damaged the previous intact one is loaded and the reason kept in ``warnings``.
        """
        path = Path(path_or_repo)
        if not path.exists() and _looks_like_repo_id(str(path_or_repo)):
            from .hub import pull

            path = pull(str(path_or_repo), revision=revision, **hub_kwargs)
        folder, warnings = artifacts.resolve_artifact(path, version=version)
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ModelError(f"{folder / 'config.json'} is missing or corrupt ({e}).") from None
        kind = config.get("model_type")
        impl = _implementation(kind)
        if cls is not Recognizer and not issubclass(impl, cls):
            raise ModelError(f"{folder} holds a {kind} model, not {cls.kind}.")
        rec = impl._read(folder, config, artifacts.read_metadata(folder))
        rec.path = folder
        rec.warnings = warnings
        return rec

    def push_to_hub(self, repo_id: str, **kwargs) -> dict:
        """Upload this model's saved folder to a Hub repo (see :func:`ser.hub.push`)."""
        from .hub import push

        if self.path is None:
            raise ModelError("Save the model first (save_pretrained) so there is a folder to push.")
        return push(self.path, repo_id, **kwargs)


def _card_text(metadata: dict) -> str | None:
    """The model card for a version's metadata (None while the Hub module is unavailable)."""
    try:
        from .hub import build_card
    except ImportError:
        return None
    return str(build_card(metadata))


def _looks_like_repo_id(s: str) -> bool:
    parts = s.split("/")
    return len(parts) == 2 and all(parts) and not s.startswith((".", "/", "~"))


def _implementation(kind: str | None) -> type[Recognizer]:
    if kind not in _IMPLEMENTATIONS:
        raise ModelError(f"Unknown model_type {kind!r} in config.json; expected one of {MODEL_KINDS}.")
    module, name = _IMPLEMENTATIONS[kind].split(":")
    return getattr(importlib.import_module(module), name)


class MLPRecognizer(Recognizer):
    """Handcrafted features → ``Pipeline(StandardScaler, MLPClassifier)``."""

    kind = "mlp"

    def __init__(self, pipeline, *, features=None, labels=None, audio=None, metadata=None,
                 temperature: float | None = None):
        from .features import FeatureConfig

        labels = list(pipeline.classes_) if labels is None else labels
        super().__init__(labels=labels, audio=audio, metadata=metadata, temperature=temperature)
        self.pipeline = pipeline
        self.features = features if isinstance(features, FeatureConfig) else FeatureConfig(**(features or {}))
        classes = list(pipeline.classes_)
        if sorted(classes) != sorted(self.labels):
            raise ModelError(f"Pipeline classes {classes} do not match labels {self.labels}.")
        self._columns = [classes.index(lab) for lab in self.labels]

    def features_of(self, y: np.ndarray) -> np.ndarray:
        from .features import extract

        return extract(y, config=self.features)

    def predict_proba(self, y: np.ndarray) -> np.ndarray:
        return self.proba_from_features(self.features_of(y)[None, :])[0]

    def proba_from_features(self, X: np.ndarray) -> np.ndarray:
        """Probabilities ``[n, len(labels)]`` for feature rows (columns in ``labels`` order),
        temperature-scaled when the model has a :attr:`temperature` (arg-max unchanged)."""
        return self.calibrated(self.pipeline.predict_proba(X)[:, self._columns])

    def config(self) -> dict:
        return {**super().config(), "features": self.features.to_dict()}

    def _write(self, folder: Path) -> None:
        import joblib
        import skops.io as sio
        from sklearn.preprocessing import LabelEncoder

        sio.dump(self.pipeline, folder / "model.skops")
        # The seed's file names, for scripts written against it; never loaded by ser itself.
        joblib.dump(self.pipeline.named_steps["mlp"], folder / "emotion_model.pkl")
        joblib.dump(self.pipeline.named_steps["scaler"], folder / "scaler.pkl")
        joblib.dump(LabelEncoder().fit(self.labels), folder / "label_encoder.pkl")

    @classmethod
    def _read(cls, folder: Path, config: dict, metadata: dict) -> "MLPRecognizer":
        from .mlp import load_pipeline

        return cls(load_pipeline(folder / "model.skops"), features=config.get("features"),
                   labels=config["labels"], audio=config.get("audio"), metadata=metadata,
                   temperature=config.get("temperature"))


class ModelRegistry:
    """Thread-safe cache of loaded recognizers by kind, as the app serves them.

    A new model replaces the served one only through :meth:`set`, after it is fully saved, so
    concurrent predictions always see a complete model.
    """

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else models_dir()
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
            raise ModelError(f"No {kind} model is saved in {self.root}; train one with `python train.py {kind}`.")
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


def get_recognizer(model: str = "mlp") -> Recognizer:
    """The recognizer ``predict`` uses for ``model`` (a kind in ``models_dir()``, or a folder)."""
    global _DEFAULT
    if model not in MODEL_KINDS:
        return Recognizer.from_pretrained(model)
    with _DEFAULT_LOCK:
        if _DEFAULT is None or _DEFAULT.root != models_dir():
            _DEFAULT = ModelRegistry()
    return _DEFAULT.get(model)


def predict(audio: AudioSource, model: str = "mlp", *, threshold: float | None = None) -> Prediction:
    """Predict the emotion of ``audio`` with a saved model (``"mlp"``, ``"cnn"``, ``"ensemble"``).

    Examples
    --------
    >>> import ser
    >>> p = ser.predict("clip.wav", model="mlp")  # doctest: +SKIP
    >>> p.label, round(p.confidence, 2), p.probabilities["calm"]  # doctest: +SKIP
    """
    return get_recognizer(model).predict(audio, threshold=threshold)
