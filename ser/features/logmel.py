"""The log-mel "image" the CNN sees: 128 mel bands x 128 frames, with a fixed shape contract.

Framing: 16 kHz audio, Hann window of ``win_length=400`` samples (25 ms) zero-padded to
``n_fft=1024``, hop ``320`` samples (20 ms), 128 mel bands from 0 to 8 kHz, centred frames.
128 frames therefore span ``127 * 320 / 16000 = 2.54 s`` (:attr:`SpectrogramConfig.window_s`).

Policy for the fixed window:
- shorter clips are zero-padded equally on both sides (in the audio, so padding reads as the
  floor of the dB scale);
- longer clips are cut into windows with 50 % overlap; :func:`logmel_windows` returns all of
  them and the model averages its probabilities over them, so a 20 s recording is heard whole.

Scaling: power in dB relative to the loudest bin *of the whole clip* (gain-invariant),
floored at -80 dB, then mapped linearly to ``[-1, 1]``: ``(dB + 40) / 40``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..audio.io import as_signal
from .stft import magnitude, mel_filterbank

__all__ = ["SpectrogramConfig", "logmel", "logmel_image", "logmel_windows", "frames_to_samples"]


@dataclass(frozen=True)
class SpectrogramConfig:
    """Settings of the log-mel image; saved with every CNN in ``config.json``."""

    sr: int = 16_000
    n_fft: int = 1024
    win_length: int = 400
    hop_length: int = 320
    n_mels: int = 128
    n_frames: int = 128
    fmin: float = 0.0
    fmax: float = 8000.0
    top_db: float = 80.0
    overlap: float = 0.5  # between consecutive windows of a long clip

    @property
    def window_samples(self) -> int:
        """Samples covered by one image: ``(n_frames - 1) * hop_length``."""
        return (self.n_frames - 1) * self.hop_length

    @property
    def window_s(self) -> float:
        return self.window_samples / self.sr

    def to_dict(self) -> dict:
        return asdict(self)


def logmel(y: np.ndarray, *, config: SpectrogramConfig = SpectrogramConfig()) -> np.ndarray:
    """Scaled log-mel spectrogram of a whole clip.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono audio at ``config.sr`` (as returned by :func:`ser.audio.load_audio`).

    Returns
    -------
    S : np.ndarray [shape=(n_mels, 1 + n // hop_length), dtype=float32]
        Values in ``[-1, 1]``: ``(10 log10(P / max P) + 40) / 40`` floored at ``-top_db``.
    """
    spec = magnitude(y, n_fft=config.n_fft, hop_length=config.hop_length, win_length=config.win_length) ** 2
    mel = mel_filterbank(sr=config.sr, n_fft=config.n_fft, n_mels=config.n_mels, fmin=config.fmin,
                         fmax=config.fmax) @ spec
    ref = max(float(mel.max()), 1e-10)
    db = 10.0 * np.log10(np.maximum(mel, ref * 10 ** (-config.top_db / 10)) / ref)
    scaled = (db + config.top_db / 2) / (config.top_db / 2)
    return np.clip(scaled, -1.0, 1.0).astype(np.float32)  # float rounding left the floor at -1 - 2e-7


def logmel_windows(y: np.ndarray, *, config: SpectrogramConfig = SpectrogramConfig()) -> np.ndarray:
    """All fixed-size images of a clip: padded if short, 50 %-overlapping windows if long.

    Returns
    -------
    X : np.ndarray [shape=(n_windows, n_mels, n_frames), dtype=float32]
        ``n_windows >= 1``. Frame ``t`` of window ``w`` starts at sample
        ``(w * step + t) * hop_length`` with ``step = round(n_frames * (1 - overlap))``.
    """
    y = as_signal(y)
    if len(y) < config.window_samples:
        pad = config.window_samples - len(y)
        y = np.pad(y, (pad // 2, pad - pad // 2))
    S = logmel(y, config=config)
    n = S.shape[1]
    step = max(1, int(round(config.n_frames * (1 - config.overlap))))
    starts = list(range(0, max(n - config.n_frames, 0) + 1, step))
    if starts[-1] + config.n_frames < n:  # cover the tail too
        starts.append(n - config.n_frames)
    return np.stack([S[:, s : s + config.n_frames] for s in starts]).astype(np.float32)


def logmel_image(y: np.ndarray, *, config: SpectrogramConfig = SpectrogramConfig()) -> np.ndarray:
    """The single centred ``(n_mels, n_frames)`` image of a clip (the middle window if long)."""
    windows = logmel_windows(y, config=config)
    return windows[len(windows) // 2]


def frames_to_samples(frames: np.ndarray | int, *, config: SpectrogramConfig = SpectrogramConfig()):
    """Sample index of frame numbers (centred frames: frame ``t`` is centred on ``t * hop``)."""
    return np.asarray(frames) * config.hop_length
