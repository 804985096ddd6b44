"""Handcrafted acoustic features of a clip, pooled over time into one named vector.

One magnitude STFT per clip feeds every spectral feature (mel, MFCC and its deltas, chroma,
spectral contrast, RMS), as librosa's own ``_spectrogram`` helper does; zero-crossing rate and
pitch (``librosa.yin``) work on the waveform. Each frame-level feature is pooled into its mean and
standard deviation over time; pitch adds robust statistics over voiced frames.

Extraction over a corpus runs in parallel (joblib) and is cached on disk, keyed by the file's
content hash, the feature settings and the augmentation variant.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

import librosa
import numpy as np
from joblib import Parallel, delayed
from scipy.ndimage import convolve1d
from scipy.signal import savgol_coeffs
from tqdm.auto import tqdm

from .. import settings
from ..audio.augment import apply_variant, is_degradation
from ..audio.io import SAMPLE_RATE, as_signal, load_audio, sha256_file, trim_silence
from ..audio.level import normalize_level
from .stft import chroma_filterbank, magnitude, mel_filterbank

__all__ = [
    "FeatureConfig",
    "extract",
    "feature_names",
    "feature_groups",
    "extract_corpus",
    "map_corpus",
]

_FRAME_FEATURES = ("mfcc", "mfcc_delta", "mfcc_delta2", "chroma", "mel", "zcr", "contrast", "rms")
_PITCH_STATS = ("mean", "std", "p10", "p90", "voiced_fraction")


@dataclass(frozen=True)
class FeatureConfig:
    """Feature settings; saved with every MLP in ``config.json``.

    Framing: Hann window of ``win_length=400`` samples (25 ms at 16 kHz) zero-padded to
    ``n_fft=1024``, hop of ``160`` samples (10 ms). Pitch: YIN between ``fmin`` and ``fmax`` Hz.
    ``level_db``: scale each clip to this active-speech level first
    (:func:`ser.audio.level.normalize_level`), so absolute recording level is not a feature;
    ``None`` keeps the level as recorded. ``band_limit``: mel bands, MFCCs and spectral contrast of
    the spectrum below this frequency only (Hz); the band next to Nyquist holds mostly the resampler's
    or codec's roll-off, a property of the channel, not the voice. ``None``: up to Nyquist.
    """

    sr: int = SAMPLE_RATE
    n_fft: int = 1024
    win_length: int = 400
    hop_length: int = 160
    n_mfcc: int = 40
    n_mels: int = 128
    n_chroma: int = 12
    n_contrast_bands: int = 6
    fmin: float = 60.0
    fmax: float = 400.0
    pitch_frame_length: int = 1024  # YIN needs >= 2 periods of fmin: 2 * 16000 / 60 = 533 samples
    delta_width: int = 9
    level_db: float | None = None
    band_limit: float | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        for optional in ("level_db", "band_limit"):
            if d[optional] is None:  # models saved before the setting existed have the same key
                del d[optional]
        return d

    def key(self) -> str:
        """A short hash of the settings, part of every cache key."""
        return hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


def _sizes(config: FeatureConfig) -> dict[str, int]:
    return {
        "mfcc": config.n_mfcc, "mfcc_delta": config.n_mfcc, "mfcc_delta2": config.n_mfcc,
        "chroma": config.n_chroma, "mel": config.n_mels, "zcr": 1,
        "contrast": config.n_contrast_bands + 1, "rms": 1,
    }


def _columns(config: FeatureConfig) -> list[tuple[str, str]]:
    """(family, column name) of every column, in order."""
    cols = []
    for group, n in _sizes(config).items():
        for stat in ("mean", "std"):
            cols += [(group, f"{group}[{i}]_{stat}" if n > 1 else f"{group}_{stat}") for i in range(n)]
    return cols + [("pitch", f"pitch_{s}") for s in _PITCH_STATS]


def feature_names(config: FeatureConfig = FeatureConfig()) -> list[str]:
    """Column names of :func:`extract`'s vector, e.g. ``mfcc[3]_mean``, ``mfcc_delta2[0]_std``, ``pitch_p90``."""
    return [name for _, name in _columns(config)]


def feature_groups(config: FeatureConfig = FeatureConfig()) -> dict[str, np.ndarray]:
    """Column indices of each feature family (``mfcc``, ``mfcc_delta``, ``chroma``, ``pitch``, ...)."""
    groups: dict[str, list[int]] = {}
    for i, (family, _) in enumerate(_columns(config)):
        groups.setdefault(family, []).append(i)
    return {k: np.array(v) for k, v in groups.items()}


@functools.lru_cache(maxsize=16)
def _savgol(width: int, order: int) -> np.ndarray:
    """Savitzky-Golay derivative filter, built once (``savgol_filter`` solves a least-squares fit per call)."""
    coeffs = savgol_coeffs(width, order, deriv=order)
    coeffs.setflags(write=False)
    return coeffs


def _delta(data: np.ndarray, *, width: int, order: int) -> np.ndarray:
    """``librosa.feature.delta(data, width=width, order=order, mode="nearest")`` along time, identically
    (the same filter and ``scipy.ndimage.convolve1d``), without rebuilding the filter per clip."""
    return convolve1d(data, _savgol(width, order), axis=-1, mode="nearest")


def extract(y: np.ndarray, *, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Feature vector of one clip.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono audio at ``config.sr``, as returned by :func:`ser.audio.load_audio`.

    Returns
    -------
    x : np.ndarray [shape=(len(feature_names(config)),), dtype=float32]
        Finite values, in the order of :func:`feature_names`.
    """
    y = as_signal(y)
    if config.level_db is not None:
        y = normalize_level(y, sr=config.sr, target_db=config.level_db)
    if len(y) < config.pitch_frame_length:  # shorter than one analysis frame: pad, do not fail
        y = np.pad(y, (0, config.pitch_frame_length - len(y)))
    S = magnitude(y, n_fft=config.n_fft, hop_length=config.hop_length, win_length=config.win_length)
    power = S**2
    mel_fb = mel_filterbank(sr=config.sr, n_fft=config.n_fft, n_mels=config.n_mels, fmax=config.band_limit)
    chroma_fb = chroma_filterbank(sr=config.sr, n_fft=config.n_fft, n_chroma=config.n_chroma)
    log_mel = librosa.power_to_db(mel_fb @ power, ref=1.0, amin=1e-10, top_db=None)
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=config.n_mfcc)
    width = min(config.delta_width, mfcc.shape[1] - (1 - mfcc.shape[1] % 2))
    width = max(width, 3)
    chroma = chroma_fb @ power
    chroma = chroma / np.maximum(chroma.max(axis=0, keepdims=True), 1e-10)
    frames = {
        "mfcc": mfcc,
        "mfcc_delta": _delta(mfcc, width=width, order=1),
        "mfcc_delta2": _delta(mfcc, width=width, order=2),
        "chroma": chroma,
        "mel": log_mel,
        "zcr": librosa.feature.zero_crossing_rate(y, frame_length=config.win_length,
                                                  hop_length=config.hop_length, center=True),
        "contrast": _contrast(S, config),
        "rms": librosa.feature.rms(S=S, frame_length=config.n_fft),
    }
    parts = []
    for name in _FRAME_FEATURES:
        f = frames[name]
        parts += [f.mean(axis=1), f.std(axis=1)]
    parts.append(_pitch_stats(y, rms=frames["rms"][0], config=config))
    x = np.concatenate(parts).astype(np.float32)
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def _contrast(S: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Spectral contrast ``[n_contrast_bands + 1, n_frames]`` of ``S`` below ``config.band_limit``."""
    freq = librosa.fft_frequencies(sr=config.sr, n_fft=config.n_fft)
    keep = slice(None) if config.band_limit is None else freq <= config.band_limit
    return librosa.feature.spectral_contrast(S=S[keep], sr=config.sr, freq=freq[keep],
                                             n_bands=config.n_contrast_bands, fmin=100.0)


def _pitch_stats(y: np.ndarray, *, rms: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """YIN f0 statistics over voiced frames (RMS above 10 % of its maximum)."""
    f0 = librosa.yin(y, fmin=config.fmin, fmax=config.fmax, sr=config.sr,
                     frame_length=config.pitch_frame_length, hop_length=config.hop_length, center=True)
    n = min(len(f0), len(rms))
    f0, rms = f0[:n], rms[:n]
    voiced = rms > 0.1 * max(float(rms.max()), 1e-10)
    v = f0[voiced] if voiced.any() else f0
    return np.array([v.mean(), v.std(), np.percentile(v, 10), np.percentile(v, 90), voiced.mean()],
                    dtype=np.float32)


def _variants_of_file(path: str, variants: tuple[str, ...], compute: Callable[[np.ndarray], np.ndarray],
                      key: str, folder: Path | None, sr: int) -> tuple[list[np.ndarray], str]:
    """``compute`` of each augmented variant of one file, read from / written to the cache."""
    digest = sha256_file(path)
    targets = [folder / f"{digest[:32]}-{key}-{v}.npy" if folder else None for v in variants]
    rows: list[np.ndarray | None] = [np.load(t) if t is not None and t.is_file() else None for t in targets]
    if any(r is None for r in rows):
        y = load_audio(path, sr=sr)
        raw = None  # degradations act on the untrimmed clip, then the loader's trimming follows
        for i, (v, target) in enumerate(zip(variants, targets)):
            if rows[i] is None:
                if is_degradation(v):
                    raw = load_audio(path, sr=sr, trim=False) if raw is None else raw
                    z = trim_silence(apply_variant(raw, v, sr=sr, key=digest))
                else:
                    z = apply_variant(y, v, sr=sr, key=digest)
                rows[i] = np.asarray(compute(z))
                if target is not None:
                    tmp = target.with_suffix(f".{os.getpid()}.tmp.npy")
                    np.save(tmp, rows[i])
                    os.replace(tmp, target)  # atomic: a killed run never leaves half a file
    return rows, digest


def map_corpus(
    paths: Sequence[str],
    compute: Callable[[np.ndarray], np.ndarray],
    *,
    key: str,
    subdir: str,
    sr: int = SAMPLE_RATE,
    variants: Sequence[str] = ("original",),
    n_jobs: int = -1,
    cache: bool = True,
    progress: bool = True,
    desc: str = "clips",
    backend: str | None = None,
) -> tuple[list[list[np.ndarray]], list[str]]:
    """``compute(variant of clip)`` for every file and variant, in parallel, cached on disk.

    The one cache of ``ser``: features (:func:`extract_corpus`) and log-mel images (``ser.cnn``)
    both go through it. Each file is decoded once (:func:`ser.audio.load_audio`), each variant made
    with :func:`ser.augment.apply_variant` (degradations of :mod:`ser.degrade` on the untrimmed
    clip, trimmed afterwards as the loader would), and each result stored as
    ``settings.cache_dir()/<subdir>/<sha256[:32]>-<key>-<variant>.npy`` (written atomically).

    Parameters
    ----------
    compute : callable
        ``compute(y) -> np.ndarray`` on a loaded clip; must be picklable (a module-level function
        or a ``functools.partial`` of one) for the worker processes.
    key : str
        Identifies ``compute`` and its settings (e.g. ``FeatureConfig.key()``): change it when
        the output would change.

    Returns
    -------
    rows : list of lists of np.ndarray
        ``rows[i][j]`` is the result for ``paths[i]`` and ``variants[j]``.
    hashes : list of str
        sha256 of each file (to keep identical recordings on one side of a split).
    """
    folder = settings.cache_dir() / subdir if cache else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    jobs = (delayed(_variants_of_file)(str(p), tuple(variants), compute, key, folder, sr) for p in paths)
    parallel = Parallel(n_jobs=n_jobs, return_as="generator", batch_size=8, backend=backend)
    results = list(tqdm(parallel(jobs), total=len(paths), desc=desc, unit="clip",
                        disable=not progress, leave=False))
    return [r[0] for r in results], [r[1] for r in results]


def extract_corpus(
    paths: Sequence[str],
    *,
    config: FeatureConfig = FeatureConfig(),
    variants: Sequence[str] = ("original",),
    n_jobs: int = -1,
    cache: bool = True,
    progress: bool = True,
    backend: str | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Features of many files, in parallel, cached (through :func:`map_corpus`).

    Returns
    -------
    X : np.ndarray [shape=(n_files, n_variants, n_features), dtype=float32]
        ``X[:, 0]`` is the unaugmented clip when ``variants[0] == "original"``.
    hashes : list of str
        sha256 of each file (to keep identical recordings on one side of a split).
    """
    rows, hashes = map_corpus(paths, partial(extract, config=config), key=config.key(), subdir="features",
                              sr=config.sr, variants=variants, n_jobs=n_jobs, cache=cache,
                              progress=progress, desc="features", backend=backend)
    if not rows:
        return np.zeros((0, len(variants), len(feature_names(config))), np.float32), []
    return np.stack([np.stack(r) for r in rows]), hashes
