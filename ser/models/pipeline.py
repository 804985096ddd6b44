"""Recognizers that are a feature vector → one scikit-learn ``Pipeline`` (scaler + classifier).

Scaler and classifier are one object, saved whole (``model.skops``, loaded with an explicit list of
trusted types), so training and prediction cannot diverge. A kind names its feature extractor
(:meth:`PipelineRecognizer.features_of`) and the settings class it is configured by; the MLP
(:mod:`.mlp`) and the openSMILE model (:mod:`.smile`) are the two kinds.

A pipeline model trained for speaker adaptation (:class:`ser.models.speaker.Adaptation`) holds, in the
same folder, a head per standardisation method beside its own pipeline::

    config.json            ... "adaptation": {"space", "z_from_clips", "min_clips", "blend_below",
                                              "heads": {"z": {"k", "floor_fraction", "temperature"}, ...}}
    adapted_z.skops        Pipeline(StandardScaler, classifier) fitted on z-standardised training speakers
    adapted_z_floor.npy    its std floor per feature (0.1 x the training std)
    adapted_mean.skops     the same on mean-subtracted speakers

A profile of ``z_from_clips`` clips or more is served by the z head; fewer, by the blend of the parts
``blend_below`` names (the unadapted model and both heads).
"""

from __future__ import annotations

import dataclasses

from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import skops.io as sio

from ..errors import ModelError
from ..hub.artifacts import load_pipeline
from .base import Recognizer
from .speaker import MODEL_PART, Adaptation, AdaptedHead, Enrolment, SpeakerProfile, blend, space_key

__all__ = ["PipelineRecognizer"]


class PipelineRecognizer(Recognizer):
    """A clip's feature vector through a fitted ``Pipeline``; columns in ``labels`` order.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Fitted, with ``classes_`` the emotion names.
    features : settings of the kind's extractor, or their ``dict`` (from ``config.json``)
    adaptation : Adaptation, optional
        Heads trained for speaker adaptation (``predict(..., speaker=profile)``); ``None``: the
        model cannot adapt and says so.
    """

    #: the settings class of this kind's feature extractor (a frozen dataclass with ``to_dict``)
    feature_config: ClassVar[type]

    def __init__(self, pipeline, *, features=None, labels=None, audio=None, metadata=None,
                 temperature: float | None = None, adaptation: Adaptation | None = None):
        labels = list(pipeline.classes_) if labels is None else labels
        super().__init__(labels=labels, audio=audio, metadata=metadata, temperature=temperature)
        self.pipeline = pipeline
        if isinstance(features, self.feature_config):
            self.features = features
        else:
            known = {f.name for f in dataclasses.fields(self.feature_config)}
            unknown = sorted(set(features or {}) - known)
            if unknown:  # a model saved by a newer (or other) ser: say so instead of a TypeError
                raise ModelError(f"The model's feature settings {unknown} are unknown to this version of ser "
                                 f"(known: {sorted(known)}); update ser or retrain the model.")
            self.features = self.feature_config(**(features or {}))
        classes = list(pipeline.classes_)
        if sorted(classes) != sorted(self.labels):
            raise ModelError(f"Pipeline classes {classes} do not match labels {self.labels}.")
        self._columns = [classes.index(lab) for lab in self.labels]
        #: heads for speaker adaptation (:mod:`ser.models.speaker`); ``None``: the model cannot adapt
        self.adaptation = adaptation
        if adaptation is not None:
            for method, head in adaptation.heads.items():
                if sorted(map(str, head.classes_)) != sorted(self.labels):
                    raise ModelError(f"Adapted head {method} predicts {list(head.classes_)}, the model {self.labels}.")

    def features_of(self, y: np.ndarray) -> np.ndarray:
        """The feature vector ``[n_features]`` of one loaded clip (each kind)."""
        raise NotImplementedError

    def raw_proba_batch(self, ys: Sequence[np.ndarray]) -> np.ndarray:
        return self.raw_proba_from_features(np.stack([self.features_of(y) for y in ys]))

    def raw_proba_from_features(self, X: np.ndarray, *, pipeline=None) -> np.ndarray:
        """Uncalibrated probabilities ``[n, len(labels)]`` of feature rows ``X [n, n_features]``
        (through ``pipeline``, default the model's own; an adapted head's for standardised rows).

        The pipeline runs one row at a time: a matrix product over a batch rounds differently from
        one over a row (about 1e-7), and a clip's probabilities must not depend on which clips share
        its batch (a file's row in a batch CSV is exactly its ``ser.predict``). A row costs well under
        a millisecond, against tens of milliseconds for its features.
        """
        X = np.asarray(X)
        if not len(X):
            return np.zeros((0, len(self.labels)))
        if pipeline is None:
            pipeline, columns = self.pipeline, self._columns
        else:  # an adapted head: its own column order
            columns = [list(pipeline.classes_).index(lab) for lab in self.labels]
        return np.concatenate([pipeline.predict_proba(X[i:i + 1])[:, columns] for i in range(len(X))])

    def proba_from_features(self, X: np.ndarray) -> np.ndarray:
        """Probabilities ``[n, len(labels)]`` of feature rows, temperature-scaled when the model has
        a :attr:`temperature` (arg-max unchanged)."""
        return self.calibrated(self.raw_proba_from_features(X))

    # -- speaker adaptation ------------------------------------------------------------------
    @property
    def space(self) -> str:
        """Key of this model's feature space (what a speaker profile's statistics are filed under)."""
        return space_key(self.features)

    def adaptation_spaces(self) -> dict[str, "PipelineRecognizer"]:
        return {self.space: self} if self.adaptation is not None else {}

    def speaker_notes(self, profile: SpeakerProfile) -> list[str]:
        if self.adaptation is None:
            return super().speaker_notes(profile)
        n = profile.stats(self.space, audio=self.audio).n_clips
        if self.adaptation.parts_for(n) == ("z",):
            return []
        return [f"adapted to the speaker from only {n} enrolment clips (blended with the unadapted model); "
                f"{self.adaptation.z_from_clips} or more adapt fully"]

    def adapted_raw_proba_batch(self, ys: Sequence[np.ndarray],
                                profile: SpeakerProfile) -> tuple[np.ndarray, float | None]:
        """The adapted head's raw probabilities and its temperature; for a profile of fewer than
        ``z_from_clips`` clips the :func:`~ser.models.speaker.blend` of the parts
        :meth:`~ser.models.speaker.Adaptation.parts_for` names (each scaled by its own temperature,
        so the temperature returned is ``None``)."""
        if self.adaptation is None:
            return super().adapted_raw_proba_batch(ys, profile)
        stats = profile.stats(self.space, audio=self.audio)
        X = np.stack([self.features_of(y) for y in ys])
        probas, temperatures = [], []
        for part in self.adaptation.parts_for(stats.n_clips):
            if part == MODEL_PART:
                probas.append(self.raw_proba_from_features(X))
                temperatures.append(self.temperature)
            else:
                head = self.adaptation.heads[part]
                probas.append(self.raw_proba_from_features(head.rows(X, stats), pipeline=head.pipeline))
                temperatures.append(head.temperature)
        if len(probas) == 1:
            return probas[0], temperatures[0]
        return blend(probas, temperatures), None

    # -- persistence -----------------------------------------------------------------------
    def config(self) -> dict:
        cfg = {**super().config(), "features": self.features.to_dict()}
        if self.adaptation is not None:
            a = self.adaptation
            cfg["adaptation"] = {
                "space": self.space, "z_from_clips": a.z_from_clips, "min_clips": a.min_clips,
                "blend_below": list(a.blend_below),
                "heads": {m: {"k": h.enrolment.k, "floor_fraction": h.enrolment.floor_fraction,
                              "temperature": h.temperature} for m, h in a.heads.items()}}
        return cfg

    def _write(self, folder: Path) -> None:
        sio.dump(self.pipeline, folder / "model.skops")
        for method, head in (self.adaptation.heads.items() if self.adaptation else ()):
            sio.dump(head.pipeline, folder / f"adapted_{method}.skops")
            if head.floor is not None:
                with open(folder / f"adapted_{method}_floor.npy", "wb") as f:
                    np.save(f, np.asarray(head.floor, dtype=np.float32), allow_pickle=False)

    @classmethod
    def _read(cls, folder: Path, config: dict, metadata: dict) -> "PipelineRecognizer":
        rec = cls(load_pipeline(folder / "model.skops"), features=config.get("features"),
                  labels=config["labels"], audio=config.get("audio"), metadata=metadata,
                  temperature=config.get("temperature"), adaptation=_read_adaptation(folder, config))
        made_for = (config.get("adaptation") or {}).get("space")
        if rec.adaptation is not None and made_for != rec.space:
            raise ModelError(f"{folder}: the speaker adaptation was made for feature space {made_for}, not this "
                             f"model's ({rec.space}).")
        return rec


def _read_adaptation(folder: Path, config: dict) -> Adaptation | None:
    """The adapted heads a saved model folder holds (``config["adaptation"]``), or ``None``."""
    spec = config.get("adaptation")
    if not spec:
        return None
    try:
        heads = {}
        for method, h in spec["heads"].items():
            enrolment = Enrolment(method=method, k=int(h["k"]), floor_fraction=float(h["floor_fraction"]))
            floor = None
            if method == "z":
                floor = np.load(folder / f"adapted_{method}_floor.npy", allow_pickle=False).astype(np.float32)
            heads[method] = AdaptedHead(load_pipeline(folder / f"adapted_{method}.skops"), enrolment, floor,
                                        None if h.get("temperature") is None else float(h["temperature"]))
        adaptation = Adaptation(heads, z_from_clips=int(spec["z_from_clips"]), min_clips=int(spec["min_clips"]),
                                blend_below=tuple(spec.get("blend_below", ())))
    except (KeyError, TypeError, ValueError, OSError) as e:
        raise ModelError(f"{folder}: the speaker adaptation in config.json cannot be read "
                         f"({type(e).__name__}: {e}).") from None
    return adaptation
