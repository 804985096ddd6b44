"""Training-side augmentation of waveforms: pitch shift, time stretch, noise.

These are applied only to clips on the training side of a split, after the split: evaluation code
asks for augmented copies of training clips by name (:data:`VARIANTS`) and never of test clips.
Every variant is deterministic for a given clip (noise is seeded), so features can be cached.
"""

from __future__ import annotations

import zlib

import numpy as np

from .audio import SAMPLE_RATE

__all__ = ["pitch_shift", "time_stretch", "add_noise", "apply_variant", "VARIANTS", "ORIGINAL"]

ORIGINAL = "original"
#: Augmented variants used for training, by name (the seed's pitch +2 semitones and 1.1x stretch,
#: plus white noise at 20 dB SNR).
VARIANTS: tuple[str, ...] = ("pitch+2", "stretch1.1", "noise20dB")


def pitch_shift(y: np.ndarray, *, sr: int = SAMPLE_RATE, n_steps: float = 2.0) -> np.ndarray:
    """Shift pitch by ``n_steps`` semitones, keeping duration (librosa phase vocoder + soxr)."""
    import librosa

    return librosa.effects.pitch_shift(y, sr=sr, n_steps=n_steps, res_type="soxr_hq").astype(np.float32)


def time_stretch(y: np.ndarray, *, rate: float = 1.1) -> np.ndarray:
    """Play ``rate`` times faster without changing pitch (``rate > 1`` shortens the clip)."""
    import librosa

    return librosa.effects.time_stretch(y, rate=rate).astype(np.float32)


def add_noise(y: np.ndarray, *, snr_db: float = 20.0, seed: int = 0) -> np.ndarray:
    """Add white Gaussian noise at a signal-to-noise ratio of ``snr_db`` dB.

    ``noise power = signal power / 10 ** (snr_db / 10)``.
    """
    rng = np.random.default_rng(seed)
    power = float(np.mean(np.square(y, dtype=np.float64)))
    noise = rng.standard_normal(len(y)) * np.sqrt(power / 10 ** (snr_db / 10))
    return (y + noise).astype(np.float32)


def apply_variant(y: np.ndarray, variant: str, *, sr: int = SAMPLE_RATE, key: str = "") -> np.ndarray:
    """Apply a named variant (:data:`VARIANTS` or :data:`ORIGINAL`); ``key`` seeds the noise."""
    if variant == ORIGINAL:
        return y
    if variant == "pitch+2":
        return pitch_shift(y, sr=sr, n_steps=2.0)
    if variant == "stretch1.1":
        return time_stretch(y, rate=1.1)
    if variant == "noise20dB":
        return add_noise(y, snr_db=20.0, seed=zlib.crc32(key.encode()))
    raise ValueError(f"Unknown augmentation {variant!r}; expected one of {(ORIGINAL,) + VARIANTS}.")
