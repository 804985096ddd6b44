"""What a training run records about itself: libraries, data, labels, audio settings."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from dataclasses import dataclass
from typing import Callable, Sequence

from ..audio.corpora import EMOTIONS, Clip, corpus_licence, summarize
from ..models.base import AUDIO_DEFAULTS, Recognizer
from .protocols import oof_of

__all__ = ["TrainingReport", "finish", "Progress", "noop_progress",
           "library_versions", "data_summary", "labels_of", "audio_settings"]

#: ``progress(fraction, message)``: the CLI prints it, the app feeds ``gr.Progress``.
Progress = Callable[[float, str], None]


def noop_progress(fraction: float, message: str) -> None:
    """A :data:`Progress` that shows nothing."""


def library_versions() -> dict[str, str]:
    """Versions of the libraries a model depends on (stored in metadata)."""
    out = {"python": platform.python_version()}
    for name in ("numpy", "scipy", "librosa", "scikit-learn", "skops", "soundfile", "soxr",
                 "tensorflow-cpu", "keras", "opensmile"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def data_summary(clips: Sequence[Clip], root: str | None = None) -> dict:
    """What a model was trained on, for metadata and cards."""
    s = summarize(list(clips))
    s["licences"] = {c: corpus_licence(c) or "see the corpus" for c in s["corpora"]}
    if root is not None:
        s["source"] = str(root)
    return s


def labels_of(clips: Sequence[Clip]) -> list[str]:
    """Labels present, in canonical order (extras such as boredom last)."""
    present = {c.emotion for c in clips}
    return [e for e in EMOTIONS if e in present] + sorted(present - set(EMOTIONS))


def audio_settings() -> dict:
    """How every training clip was loaded (stored in metadata)."""
    return {**AUDIO_DEFAULTS, "trimming": "librosa.effects.trim(top_db) on 512-sample frames",
            "resampling": "soxr HQ", "downmix": "channel mean", "dc_offset": "removed"}


@dataclass
class TrainingReport:
    """What a training run measured, beyond the model's metadata: out-of-fold results per protocol."""

    metadata: dict
    results: dict  # protocol -> ProtocolResult


def finish(rec: Recognizer | None, metadata: dict, results: dict, clips: Sequence[Clip]
           ) -> tuple[Recognizer | None, TrainingReport]:
    """The end of every training run: the model gets its metadata and the out-of-fold predictions of
    the run (saved beside it, so an ensemble can be evaluated on the same splits later)."""
    if rec is not None:
        rec.metadata = metadata
        rec.oof = oof_of(results, clips)
    return rec, TrainingReport(metadata, results)
