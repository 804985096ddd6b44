"""Training-side augmentation of waveforms: pitch shift, time stretch, noise.

These are applied only to clips on the training side of a split, after the split: evaluation code
asks for augmented copies of training clips by name (:data:`VARIANTS`) and never of test clips.
Every variant is deterministic for a given clip (noise is seeded), so features can be cached.
"""

from __future__ import annotations

import zlib

import librosa
import numpy as np

from . import degrade
from .degrade import mix_noise
from .io import SAMPLE_RATE

__all__ = ["pitch_shift", "time_stretch", "apply_variant", "is_degradation", "VARIANTS",
           "ORIGINAL"]

ORIGINAL = "original"
#: Augmented variants used for training, by name (the seed's pitch +2 semitones and 1.1x stretch,
#: plus white noise at 20 dB SNR).
VARIANTS: tuple[str, ...] = ("pitch+2", "stretch1.1", "noise20dB")


def pitch_shift(y: np.ndarray, *, sr: int = SAMPLE_RATE, n_steps: float = 2.0) -> np.ndarray:
    """Shift pitch by ``n_steps`` semitones, keeping duration (librosa phase vocoder + soxr)."""
    return librosa.effects.pitch_shift(y, sr=sr, n_steps=n_steps, res_type="soxr_hq").astype(np.float32)


def time_stretch(y: np.ndarray, *, rate: float = 1.1) -> np.ndarray:
    """Play ``rate`` times faster without changing pitch (``rate > 1`` shortens the clip)."""
    return librosa.effects.time_stretch(y, rate=rate).astype(np.float32)


def apply_variant(y: np.ndarray, variant: str, *, sr: int = SAMPLE_RATE, key: str = "") -> np.ndarray:
    """Apply a named variant; ``key`` (the clip's content hash) seeds anything random.

    Names: :data:`ORIGINAL`, :data:`VARIANTS`, and the degradations of :mod:`ser.degrade`
    (``white10dB``, ``telephone``, ``opus@8k``, ...; see :func:`ser.degrade.parse_variant`), which
    :func:`ser.features.map_corpus` applies to the *untrimmed* clip (:func:`is_degradation`).
    """
    if variant == ORIGINAL:
        return y
    if variant == "pitch+2":
        return pitch_shift(y, sr=sr, n_steps=2.0)
    if variant == "stretch1.1":
        return time_stretch(y, rate=1.1)
    if variant == "noise20dB":
        return mix_noise(y, snr_db=20.0, seed=zlib.crc32(key.encode()))
    if degrade.parse_variant(variant) is not None:
        return degrade.apply_degradation(y, variant, sr=sr, key=key)
    raise ValueError(f"Unknown augmentation {variant!r}; expected one of {(ORIGINAL,) + VARIANTS} or a "
                     f"degradation such as {', '.join(degrade.EXAMPLES)}.")


def is_degradation(variant: str) -> bool:
    """Whether ``variant`` is a degradation of :mod:`ser.degrade` (applied before silence trimming,
    as real degraded audio reaches the loader), rather than a training augmentation."""
    return degrade.parse_variant(variant) is not None
