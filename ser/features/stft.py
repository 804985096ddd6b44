"""The one short-time Fourier transform and the filterbanks every spectral feature is built on.

As librosa's own ``_spectrogram`` helper: handcrafted features (:mod:`.handcrafted`) and the CNN's
log-mel images (:mod:`.logmel`) frame audio the same way. Filterbanks are built once per process
and setting (building one costs more than applying it) and are read-only.
"""

from __future__ import annotations

import functools

import librosa
import numpy as np

from ..audio.io import as_signal

__all__ = ["magnitude", "mel_filterbank", "chroma_filterbank"]


def magnitude(y: np.ndarray, *, n_fft: int, hop_length: int, win_length: int | None = None) -> np.ndarray:
    """``|STFT(y)|`` with a Hann window, frames centred on ``t * hop_length``.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono audio (checked once here: float, finite, non-empty).

    Returns
    -------
    S : np.ndarray [shape=(1 + n_fft // 2, 1 + n // hop_length)]
    """
    return np.abs(librosa.stft(as_signal(y), n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                               window="hann", center=True))


@functools.lru_cache(maxsize=16)
def mel_filterbank(*, sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Mel filterbank ``[n_mels, 1 + n_fft // 2]`` float32 (``librosa.filters.mel``, Slaney norm)."""
    fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).astype(np.float32)
    fb.setflags(write=False)
    return fb


@functools.lru_cache(maxsize=16)
def chroma_filterbank(*, sr: int, n_fft: int, n_chroma: int) -> np.ndarray:
    """Chroma filterbank ``[n_chroma, 1 + n_fft // 2]`` float32 (``librosa.filters.chroma``)."""
    fb = librosa.filters.chroma(sr=sr, n_fft=n_fft, n_chroma=n_chroma).astype(np.float32)
    fb.setflags(write=False)
    return fb
