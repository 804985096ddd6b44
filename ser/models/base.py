"""The recognizer contract: load a saved model, apply exactly its saved preprocessing, predict.

Layers, as SpeechBrain's classifiers: :meth:`Recognizer.predict` takes any audio source (file,
bytes, Gradio tuple) and loads it with the model's own audio settings; :meth:`predict_proba_batch`
takes loaded 16 kHz arrays and is **the one inference path**: every entry point (``ser.predict``,
the app's /predict, /timeline, /predict_batch, /explain, the live stream, ``ser predict``, the
Dask backend) ends in it. A model kind implements :meth:`raw_proba_batch` (uncalibrated
probabilities); the base class applies the model's temperature, once.

**Speaker adaptation.** ``predict_proba_batch(ys, speaker=profile)`` (and ``predict``) use a
:class:`ser.models.speaker.SpeakerProfile` from :meth:`Recognizer.enroll`: a kind trained for it
(``adaptation_spaces()`` not empty) implements :meth:`adapted_raw_proba_batch`, which returns its
adapted head's raw probabilities and that head's temperature, applied here once; a kind that is not
raises :class:`~ser.errors.ModelError`. Without a profile every path is exactly the unadapted one.

``Recognizer.from_pretrained(path_or_repo)`` dispatches on ``config.json``'s ``model_type`` to the
class registered for that kind (:class:`ser.models.mlp.MLPRecognizer`,
:class:`ser.models.cnn.CNNRecognizer`, :class:`ser.models.ensemble.EnsembleRecognizer`).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np

from .. import settings
from ..audio.io import MIN_VOICED_S, SAMPLE_RATE, TOP_DB, AudioSource, load_audio
from ..cluster import one_blas_thread
from ..errors import ModelError
from ..hub import artifacts
from ..hub.card import build_card
from ..hub.transfer import looks_like_repo_id, pull, push
from .calibration import apply_temperature
from .speaker import SpeakerProfile, as_profile, enroll

__all__ = ["Prediction", "Recognizer", "AUDIO_DEFAULTS", "MODEL_KINDS", "OOF_FILE", "save_oof", "load_oof"]

log = logging.getLogger(__name__)
AUDIO_DEFAULTS = {"sr": SAMPLE_RATE, "trim": True, "top_db": TOP_DB, "min_voiced_s": MIN_VOICED_S}
MODEL_KINDS = ("mlp", "cnn", "smile", "ensemble")
#: Out-of-fold predictions of the run that trained a model, saved beside it (CNN, ensemble).
OOF_FILE = "oof_predictions.npz"


@dataclass
class Prediction:
    """One prediction: the emotion, its probability, and every emotion's probability.

    ``adapted`` says a speaker profile was used (for an ensemble: by at least one member;
    ``warnings`` then names those that could not use it).
    """

    label: str
    confidence: float
    probabilities: dict[str, float]
    uncertain: bool = False
    model: str = ""
    version: str = ""
    warnings: list[str] = field(default_factory=list)
    adapted: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


class Recognizer:
    """Base class: labels, saved preprocessing, and the predict / save / load trio."""

    kind: ClassVar[str] = ""
    #: kind -> class: the first subclass naming a kind registers it (``ser.models`` imports the
    #: shipped ones first, so a subclass made elsewhere, a test's stand-in say, never replaces them)
    _kinds: ClassVar[dict[str, type["Recognizer"]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.kind:
            Recognizer._kinds.setdefault(cls.kind, cls)

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
        #: Out-of-fold predictions of the run that trained it, per protocol (:func:`save_oof`), so an
        #: ensemble can be evaluated on the same splits without retraining its members; saved beside it.
        self.oof: dict | None = None

    def calibrated(self, proba: np.ndarray) -> np.ndarray:
        """``proba`` (``[..., len(labels)]``) scaled by :attr:`temperature`, if any (arg-max unchanged)."""
        if self.temperature is None:
            return proba
        return apply_temperature(proba, self.temperature)

    # -- inference -------------------------------------------------------------------------
    def load(self, audio: AudioSource) -> np.ndarray:
        """Load audio exactly as this model's training clips were loaded."""
        return load_audio(audio, sr=self.audio["sr"], trim=self.audio["trim"], top_db=self.audio["top_db"],
                          min_voiced_s=self.audio["min_voiced_s"])

    def raw_proba_batch(self, ys: Sequence[np.ndarray]) -> np.ndarray:
        """Uncalibrated probabilities ``[len(ys), len(labels)]`` of loaded clips (each kind)."""
        raise NotImplementedError

    def predict_proba_batch(self, ys: Sequence[np.ndarray], *,
                            speaker: "SpeakerProfile | str | os.PathLike | None" = None) -> np.ndarray:
        """Probabilities of loaded clips: the one inference path of every entry point.

        Parameters
        ----------
        ys : sequence of np.ndarray [shape=(n_i,)]
            Clips at ``audio["sr"]``, as :meth:`load` returns them.
        speaker : SpeakerProfile or path of its JSON, optional
            Adapt to this speaker (:meth:`enroll`); a model that cannot raises ``ModelError``
            before any work. ``None``: exactly the unadapted path.

        Returns
        -------
        P : np.ndarray [shape=(len(ys), len(labels)), dtype=float64]
            Columns in :attr:`labels` order, temperature-scaled when the model (or, adapted, its
            adapted head) has a temperature. A clip's row does not depend on the other clips of the batch.
        """
        if speaker is not None:
            speaker = as_profile(speaker)
            self.speaker_notes(speaker)  # refuses a model or profile that cannot adapt, before any work
        if len(ys) == 0:
            return np.zeros((0, len(self.labels)))
        with one_blas_thread():  # small matrices: a 2nd BLAS thread only spins (6x slower when busy)
            if speaker is None:
                return self.calibrated(np.asarray(self.raw_proba_batch(list(ys)), dtype=np.float64))
            raw, temperature = self.adapted_raw_proba_batch(list(ys), speaker)
            raw = np.asarray(raw, dtype=np.float64)
            return raw if temperature is None else apply_temperature(raw, temperature)

    def predict_proba(self, y: np.ndarray, *, speaker=None) -> np.ndarray:
        """Probabilities ``[len(labels)]`` of one loaded clip (:meth:`predict_proba_batch` of one)."""
        return self.predict_proba_batch([y], speaker=speaker)[0]

    def predict(self, audio: AudioSource, *, threshold: float | None = None, speaker=None) -> Prediction:
        """Predict the emotion of a file path, bytes, or ``(sample_rate, samples)`` pair
        (``speaker``: a :class:`SpeakerProfile` to adapt to, see :meth:`predict_proba_batch`)."""
        if speaker is not None:
            speaker = as_profile(speaker)
            self.speaker_notes(speaker)  # a model that cannot adapt says so before loading audio
        return self.predict_array(self.load(audio), threshold=threshold, speaker=speaker)

    def predict_array(self, y: np.ndarray, *, threshold: float | None = None, speaker=None) -> Prediction:
        """Predict the emotion of one loaded clip."""
        return self.prediction(self.predict_proba(y, speaker=speaker), threshold=threshold, speaker=speaker)

    def prediction(self, p: np.ndarray, *, threshold: float | None = None, speaker=None) -> Prediction:
        """A :class:`Prediction` from a row of :meth:`predict_proba_batch` (given the same ``speaker``:
        then marked ``adapted``, with the notes of :meth:`speaker_notes`)."""
        p = np.asarray(p, dtype=np.float64)
        best = int(p.argmax())
        threshold = settings.uncertain_below() if threshold is None else threshold
        notes = [] if speaker is None else self.speaker_notes(as_profile(speaker))
        return Prediction(
            label=self.labels[best], confidence=float(p[best]),
            probabilities={lab: float(v) for lab, v in zip(self.labels, p)},
            uncertain=bool(p[best] < threshold), model=self.kind,
            version=str(self.metadata.get("version", "")), warnings=[*self.warnings, *notes],
            adapted=speaker is not None,
        )

    # -- speaker adaptation ------------------------------------------------------------------
    def adaptation_spaces(self) -> dict[str, "Recognizer"]:
        """Feature spaces this model adapts in: ``{space key: the recognizer computing those
        features}`` (``{}``: it cannot adapt; kinds trained for it override this)."""
        return {}

    def cannot_adapt_message(self) -> str:
        return (f"The {self.kind} model{self._version_text()} cannot adapt to a speaker: it was not trained for "
                "it. Models trained with speaker adaptation can (the smile kind: `ser train smile`); or predict "
                "without a profile.")

    def _version_text(self) -> str:
        version = self.metadata.get("version")
        return f" ({version})" if version else ""

    def speaker_notes(self, profile: SpeakerProfile) -> list[str]:
        """Notes a prediction adapted to ``profile`` carries (``warnings``); raises ``ModelError``
        when this model cannot adapt, ``EnrolmentError`` when the profile does not fit it."""
        raise ModelError(self.cannot_adapt_message())

    def adapted_raw_proba_batch(self, ys: Sequence[np.ndarray],
                                profile: SpeakerProfile) -> tuple[np.ndarray, float | None]:
        """Uncalibrated probabilities ``[len(ys), len(labels)]`` adapted to ``profile``, and the
        temperature that belongs to them (kinds trained for adaptation)."""
        raise ModelError(self.cannot_adapt_message())

    def enroll(self, clips: Sequence[AudioSource], **kwargs) -> SpeakerProfile:
        """A speaker profile for this model from a few unlabelled clips of one speaker
        (:func:`ser.models.speaker.enroll`: ``names``, ``add_to``, ``skip_unusable``)."""
        return enroll(self, clips, **kwargs)

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
            if self.oof:
                save_oof(folder / OOF_FILE, self.oof)

        folder = artifacts.save_artifact(root, write, meta, card=lambda m: str(build_card(m)))
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
        if not path.exists() and looks_like_repo_id(str(path_or_repo)):
            path = pull(str(path_or_repo), revision=revision, **hub_kwargs)
        folder, warnings = artifacts.resolve_artifact(path, version=version)
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ModelError(f"{folder / 'config.json'} is missing or corrupt ({e}).") from None
        kind = config.get("model_type")
        impl = cls.implementation(kind)
        if cls is not Recognizer and not issubclass(impl, cls):
            raise ModelError(f"{folder} holds a {kind} model, not {cls.kind}.")
        rec = impl._read(folder, config, artifacts.read_metadata(folder))
        rec.path = folder
        rec.warnings = warnings
        if (folder / OOF_FILE).is_file():
            rec.oof = load_oof(folder / OOF_FILE)
        return rec

    @classmethod
    def implementation(cls, kind: str | None) -> type["Recognizer"]:
        """The class registered for a ``model_type``."""
        if kind not in MODEL_KINDS or kind not in Recognizer._kinds:
            raise ModelError(f"Unknown model_type {kind!r} in config.json; expected one of {MODEL_KINDS}.")
        return Recognizer._kinds[kind]

    def push_to_hub(self, repo_id: str, **kwargs) -> dict:
        """Upload this model's saved folder to a Hub repo (see :func:`ser.hub.push`)."""
        if self.path is None:
            raise ModelError("Save the model first (save_pretrained) so there is a folder to push.")
        return push(self.path, repo_id, **kwargs)


# -- out-of-fold predictions (saved beside a CNN or an ensemble) -----------------------------------
def save_oof(path: Path, oof: dict) -> None:
    """Write ``{protocol: {"clip_ids": [...], "proba": [n, K], "labels": [...]}}`` as one ``.npz``."""
    arrays = {}
    for protocol, d in oof.items():
        arrays[f"{protocol}__clip_ids"] = np.asarray(d["clip_ids"], dtype=str)
        arrays[f"{protocol}__proba"] = np.asarray(d["proba"], dtype=np.float32)
        arrays[f"{protocol}__labels"] = np.asarray(d["labels"], dtype=str)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def load_oof(path: Path) -> dict:
    """Read what :func:`save_oof` wrote."""
    with np.load(path, allow_pickle=False) as z:
        protocols = sorted({k.split("__")[0] for k in z.files})
        return {p: {"clip_ids": z[f"{p}__clip_ids"].tolist(), "proba": z[f"{p}__proba"],
                    "labels": z[f"{p}__labels"].tolist()} for p in protocols}
