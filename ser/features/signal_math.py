"""The signal mathematics of one clip: FFT, STFT, Parseval, the Z-transform and the Laplace view.

Everything is computed from the clip itself (float32 mono as returned by
:func:`ser.audio.load_audio`) with numpy/scipy, in float64, and every identity is checked on it:

- **FFT** — ``X[k] = Σ_n x[n] e^{-2πi kn/N}`` of the whole clip (one real FFT, ``N = len(y)``),
  shown as an amplitude spectrum in dB with its strongest peaks, and a fundamental frequency
  from the FFT (Wiener–Khinchin: the autocorrelation is the inverse FFT of the power spectrum)
  next to the project's pitch feature (``librosa.yin``, 60–400 Hz).
- **STFT** — Hann window of :data:`STFT_N_FFT` samples, hop :data:`STFT_HOP` (= n_fft/4), plus the
  128×128 log-mel image the CNN sees (:func:`ser.spectrogram.logmel_image`).
- **Parseval** — ``Σ|x[n]|² = (1/N) Σ|X[k]|²`` and its STFT form
  ``Σ_m (1/N) Σ_k |X_m[k]|² = (Σ_n w[n]² / H) · Σ|x[n]|²`` (the squared Hann window overlap-adds
  to a constant at hop ``H = N/4``), each with its relative error.
- **Z-transform** — a voiced frame modelled as the all-pole system ``H(z) = G / A(z)``,
  ``A(z) = 1 + Σ_{k=1}^p a_k z^{-k}``, by linear prediction (autocorrelation method, Levinson via
  :func:`scipy.linalg.solve_toeplitz`), with its poles, stability and ``|H(e^{jω})|``.
- **Laplace transform** — the poles mapped by ``s = f_s · ln z``; each pole pair's frequency
  ``F = Im(s) / 2π`` and bandwidth ``B = -Re(s) / π`` (the formants), and the impulse and step
  responses of the impulse-invariant continuous-time system (``T · h_c(nT) = h_d[n]``).

:func:`analyze` returns all of it as JSON-friendly data (floats, ints, strings, lists; never NaN);
:func:`ser.plots.signal_math_figures` turns that data into plotly figures.
"""

from __future__ import annotations

import math
from typing import Any

import librosa
import numpy as np
import scipy.fft
import scipy.linalg
import scipy.signal
from numpy.lib.stride_tricks import sliding_window_view

from ..audio.io import SAMPLE_RATE
from ..errors import AudioError
from .logmel import SpectrogramConfig, logmel_image

__all__ = [
    "SAMPLE_RATE",
    "STFT_N_FFT",
    "STFT_HOP",
    "PITCH_FMIN",
    "PITCH_FMAX",
    "LPC_FRAME_S",
    "PRE_EMPHASIS",
    "fft_spectrum",
    "amplitude_db",
    "spectral_peaks",
    "parseval",
    "stft_energy",
    "pitch_fft",
    "pitch_yin",
    "choose_voiced_frame",
    "lpc_order",
    "lpc_system",
    "frequency_response",
    "s_plane",
    "formants",
    "continuous_responses",
    "analyze",
]


STFT_N_FFT = 512  # 32 ms Hann window at 16 kHz (win_length = n_fft)
STFT_HOP = STFT_N_FFT // 4  # 128 samples = 8 ms: Hann² overlap-adds to exactly 3/2 at hop n_fft/4
PITCH_FMIN, PITCH_FMAX = 60.0, 400.0  # Hz, the pitch feature's search range (librosa.yin)
PITCH_FRAME = 1024  # 64 ms: >= 3 periods at 60 Hz with a Hann window (Boersma 1993)
PITCH_HOP = 256  # 16 ms (the pitch feature hops 160; its F0 statistics do not depend on that)
VOICING_THRESHOLD = 0.45  # normalised autocorrelation peak of a voiced frame (Praat's default)
SILENCE_THRESHOLD = 0.03  # frame peak relative to the clip peak below which a frame is silent
OCTAVE_COST = 0.01  # per octave, favours the shorter of two equally strong periods (Praat)
LPC_FRAME_S = 0.032  # analysis frame of the all-pole model: 512 samples at 16 kHz
PRE_EMPHASIS = 0.97  # y[n] - 0.97 y[n-1]: flattens the glottal tilt before linear prediction
FORMANT_MIN_HZ = 90.0  # a resonance below this is the source's tilt, not a formant
FORMANT_MAX_BW_HZ = 400.0  # a pole pair broader than this is not a formant
DB_FLOOR = -120.0  # dB re a full-scale sine; what silence reads as
MAX_SPECTRUM_POINTS = 2048  # points of the displayed FFT spectrum (max-pooled, peaks preserved)
MAX_SPECTROGRAM_FRAMES = 300  # columns of the displayed STFT (power averaged over neighbours)
N_PEAKS = 5
PEAK_MIN_DISTANCE_HZ = 50.0
RESPONSE_MAX_S = 0.05  # continuous responses are shown until they decay to 1 %, at most 50 ms
RESPONSE_OVERSAMPLING = 4  # points per sampling period of the continuous-time curves


# --------------------------------------------------------------------------------------------
# input


def _signal(y: np.ndarray, *, sr: int, min_samples: int = 1) -> np.ndarray:
    """Validate a mono signal at the edge and return it as float64."""
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise AudioError(f"Sample rate must be a positive integer in Hz, got {sr!r}.")
    y = np.asarray(y)
    if y.ndim != 1:
        raise AudioError(f"Signal maths needs mono audio of shape (n,), got shape {y.shape}.")
    if not (np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer)):
        raise AudioError(f"Samples must be real numbers, got dtype {y.dtype}.")
    if y.size < min_samples:
        raise AudioError(
            f"Too short for spectral analysis: {y.size} samples ({1000 * y.size / sr:.1f} ms); "
            f"at least {min_samples} samples ({1000 * min_samples / sr:.0f} ms) are needed."
        )
    y = y.astype(np.float64)
    if not np.all(np.isfinite(y)):
        bad = int(np.count_nonzero(~np.isfinite(y)))
        raise AudioError(f"The signal has {bad} NaN or infinite samples; expected finite samples.")
    return y


# --------------------------------------------------------------------------------------------
# FFT


def fft_spectrum(y: np.ndarray, *, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """One-sided DFT of the whole signal.

    ``X[k] = Σ_{n=0}^{N-1} x[n] e^{-2πi kn/N}`` for ``k = 0 … N//2`` (rectangular window, no
    padding: exactly the ``N`` of Parseval's identity).

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono signal.
    sr : int
        Sample rate in Hz.

    Returns
    -------
    freqs : np.ndarray [shape=(n // 2 + 1,)]
        ``k · sr / N`` in Hz.
    X : np.ndarray [shape=(n // 2 + 1,), dtype=complex128]
    """
    y = _signal(y, sr=sr)
    return np.fft.rfftfreq(len(y), 1.0 / sr), scipy.fft.rfft(y)


def amplitude_db(X: np.ndarray, *, n: int, floor_db: float = DB_FLOOR) -> np.ndarray:
    """Amplitude of a one-sided rectangular-window spectrum in dB re a full-scale sine.

    ``20 log10(c_k |X[k]| / N)`` with ``c_k = 2`` except at DC and Nyquist (``c_k = 1``), so a sine
    of amplitude 1 at a bin frequency reads 0 dB; floored at ``floor_db``.

    Parameters
    ----------
    X : np.ndarray [shape=(n // 2 + 1,)]
        Output of :func:`fft_spectrum`.
    n : int
        Length of the transformed signal.

    Returns
    -------
    db : np.ndarray [shape=X.shape]
    """
    c = np.full(len(X), 2.0)
    c[0] = 1.0
    if n % 2 == 0:
        c[-1] = 1.0
    amp = c * np.abs(X) / n
    return 20.0 * np.log10(np.maximum(amp, 10.0 ** (floor_db / 20.0)))


def spectral_peaks(
    freqs: np.ndarray,
    db: np.ndarray,
    *,
    n_peaks: int = N_PEAKS,
    min_distance_hz: float = PEAK_MIN_DISTANCE_HZ,
    floor_db: float = DB_FLOOR,
) -> tuple[np.ndarray, np.ndarray]:
    """The strongest local maxima of a spectrum, at least ``min_distance_hz`` apart.

    Returns
    -------
    peak_freqs, peak_db : np.ndarray [shape=(k,)], ``k <= n_peaks``
        Strongest first. Empty for a flat spectrum (silence); floor-level maxima are ignored.
    """
    df = float(freqs[1] - freqs[0]) if len(freqs) > 1 else 1.0
    idx, _ = scipy.signal.find_peaks(db, distance=max(1, int(round(min_distance_hz / df))))
    idx = idx[db[idx] > floor_db + 1e-9]
    idx = idx[np.argsort(db[idx])[::-1][:n_peaks]]
    return freqs[idx], db[idx]


def _pool_max(freqs: np.ndarray, db: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Max-pool a spectrum to at most ``max_points`` points; each point keeps its peak's frequency."""
    k = max(1, math.ceil(len(db) / max_points))
    if k == 1:
        return freqs, db, 1
    m = len(db) // k * k
    blocks = db[:m].reshape(-1, k)
    arg = np.argmax(blocks, axis=1) + np.arange(0, m, k)
    f, d = freqs[arg], db[arg]
    if m < len(db):  # the tail block
        j = m + int(np.argmax(db[m:]))
        f, d = np.append(f, freqs[j]), np.append(d, db[j])
    return f, d, k


# --------------------------------------------------------------------------------------------
# Parseval


def parseval(y: np.ndarray, *, X: np.ndarray | None = None) -> dict[str, float]:
    """Parseval's identity for the DFT, checked on ``y``.

    ``E_t = Σ_n |x[n]|²`` against ``E_f = (1/N) Σ_{k=0}^{N-1} |X[k]|²``; with the one-sided
    ``X`` the negative-frequency bins are counted through ``|X[N-k]| = |X[k]|`` (real input).

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    X : np.ndarray [shape=(n // 2 + 1,)], optional
        ``scipy.fft.rfft(y)`` if already computed (one FFT per clip).

    Returns
    -------
    dict
        ``time_energy``, ``freq_energy``, ``relative_error = |E_t - E_f| / E_t``
        (0 when both are exactly 0, i.e. digital silence).
    """
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    if X is None:
        X = scipy.fft.rfft(y)
    p = np.abs(X) ** 2
    twice = p[1:-1] if n % 2 == 0 else p[1:]  # bins that stand for a +k and a -k bin
    e_f = (p[0] + 2.0 * twice.sum() + (p[-1] if n % 2 == 0 and n > 1 else 0.0)) / n
    e_t = float(np.dot(y, y))
    return {
        "time_energy": e_t,
        "freq_energy": float(e_f),
        "relative_error": _rel_err(e_t, float(e_f)),
    }


def _rel_err(reference: float, value: float) -> float:
    if reference == 0.0:
        return 0.0 if value == 0.0 else math.inf
    return abs(reference - value) / abs(reference)


# --------------------------------------------------------------------------------------------
# STFT


def stft_energy(
    y: np.ndarray,
    *,
    sr: int,
    n_fft: int = STFT_N_FFT,
    hop_length: int = STFT_HOP,
    window: str | tuple = "hann",
) -> dict[str, Any]:
    """STFT of the whole signal and the STFT form of Parseval's identity.

    The signal is zero-padded by ``n_fft - hop_length`` samples on each side so every sample lies
    in the same number of frames. Frame ``m`` is ``x_m[n] = x[n + mH - P] w[n]`` and
    ``X_m[k] = Σ_n x_m[n] e^{-2πi kn/N}``. Parseval per frame and summation over frames give

        ``Σ_m (1/N) Σ_k |X_m[k]|² = Σ_n |x[n]|² Σ_m w[n - mH + P]²``,

    and for a window whose square overlap-adds to a constant (periodic Hann at ``H = N/4``:
    ``3/2``) the inner sum is ``Σ_n w[n]² / H``, so the frame energies add up to the signal
    energy times that normalisation.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    sr : int
    n_fft : int
        Window length and DFT size ``N``.
    hop_length : int
        Hop ``H`` in samples.
    window : str or tuple
        Any :func:`scipy.signal.get_window` spec (periodic form).

    Returns
    -------
    dict
        ``S`` complex ``(n_fft // 2 + 1, n_frames)``; ``freqs`` (Hz); ``times`` (frame centres,
        s, on the clip's own time axis); ``frame_energy`` ``(n_frames,)`` ``= (1/N) Σ_k |X_m[k]|²``;
        ``window_norm = Σ w² / H``; ``signal_energy``; ``frame_energy_sum``;
        ``relative_error`` of ``Σ_m E_m`` against ``window_norm · Σ|x|²``; ``cola_ripple``:
        the largest relative deviation of ``Σ_m w[n - mH]²`` from ``window_norm`` (0 for a
        window/hop pair for which the identity is exact); ``window_sum = Σ w``.
    """
    y = _signal(y, sr=sr, min_samples=1)
    if not (0 < hop_length <= n_fft):
        raise AudioError(f"hop_length must be in 1..n_fft={n_fft}, got {hop_length}.")
    w = scipy.signal.get_window(window, n_fft, fftbins=True).astype(np.float64)
    pad = n_fft - hop_length
    last = (pad + len(y) - 1) // hop_length * hop_length  # start of the last frame holding x[n-1]
    yp = np.pad(y, (pad, last + n_fft - pad - len(y)))
    frames = sliding_window_view(yp, n_fft)[::hop_length]
    S = scipy.fft.rfft(frames * w, axis=1).T  # (n_freq, n_frames)
    p = np.abs(S) ** 2
    weights = np.full(p.shape[0], 2.0)
    weights[0] = 1.0
    if n_fft % 2 == 0:
        weights[-1] = 1.0
    frame_energy = (weights @ p) / n_fft
    w2 = w**2
    norm = float(w2.sum() / hop_length)
    # Σ_m w²[n - mH] over one period H of the overlap-add: constant iff the identity is exact
    ola = np.zeros(hop_length)
    for start in range(0, n_fft, hop_length):
        seg = w2[start : start + hop_length]
        ola[: len(seg)] += seg
    ripple = float(np.max(np.abs(ola - norm)) / norm) if norm > 0 else math.inf
    e_sig = float(np.dot(y, y))
    e_sum = float(frame_energy.sum())
    times = (np.arange(S.shape[1]) * hop_length - pad + n_fft / 2) / sr
    return {
        "S": S,
        "freqs": np.fft.rfftfreq(n_fft, 1.0 / sr),
        "times": times,
        "frame_energy": frame_energy,
        "window_norm": norm,
        "window_sum": float(w.sum()),
        "signal_energy": e_sig,
        "frame_energy_sum": e_sum,
        "relative_error": _rel_err(norm * e_sig, e_sum),
        "cola_ripple": ripple,
    }


# --------------------------------------------------------------------------------------------
# pitch


def _centered_frames(y: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """Frames centred on ``m · hop`` (zero padding), ``1 + n // hop`` of them, like librosa.yin."""
    yp = np.pad(y, (frame_length // 2, frame_length // 2))
    return sliding_window_view(yp, frame_length)[::hop_length][: 1 + len(y) // hop_length]


def pitch_fft(
    y: np.ndarray,
    *,
    sr: int,
    fmin: float = PITCH_FMIN,
    fmax: float = PITCH_FMAX,
    frame_length: int = PITCH_FRAME,
    hop_length: int = PITCH_HOP,
) -> dict[str, np.ndarray]:
    """Fundamental frequency per frame from the FFT (autocorrelation by Wiener–Khinchin).

    Each Hann-windowed frame's autocorrelation is ``r = IFFT(|FFT(x_w)|²)`` (zero-padded to avoid
    circular wrap), normalised by the window's own autocorrelation (Boersma 1993) so that a
    periodic frame scores ≈ 1 at its period ``τ``. The period is the best local maximum with
    ``sr/fmax ≤ τ ≤ sr/fmin`` (with a cost of ``0.01`` per octave favouring shorter periods),
    refined by parabolic interpolation; ``f0 = sr / τ``.

    Returns
    -------
    dict
        ``times`` ``(n_frames,)`` frame centres in s (frames centred on ``m · hop_length``, as
        ``librosa.yin(center=True)``); ``f0`` Hz (NaN where unvoiced); ``strength`` the normalised
        autocorrelation at the period; ``voiced`` bool: strength ≥ 0.45 and frame peak ≥ 3 % of
        the clip peak; ``rms`` per frame.
    """
    y = _signal(y, sr=sr)
    frames = _centered_frames(y, frame_length, hop_length)
    n_frames = frames.shape[0]
    lo = max(1, int(math.floor(sr / fmax)))
    hi = min(int(math.ceil(sr / fmin)), frame_length // 2)
    w = scipy.signal.get_window("hann", frame_length, fftbins=True)
    nfft = scipy.fft.next_fast_len(frame_length + hi + 2)  # lags 0..hi+1 free of circular wrap
    xw = (frames - frames.mean(axis=1, keepdims=True)) * w
    r = scipy.fft.irfft(np.abs(scipy.fft.rfft(xw, nfft, axis=1)) ** 2, nfft, axis=1)[:, : hi + 2]
    rw = scipy.fft.irfft(np.abs(scipy.fft.rfft(w, nfft)) ** 2, nfft)[: hi + 2]
    r0 = r[:, :1]
    with np.errstate(invalid="ignore", divide="ignore"):
        rn = np.where(r0 > 0, r / np.where(r0 > 0, r0, 1.0), 0.0) / (rw / rw[0])
    lags = np.arange(lo, hi + 1)
    mid, left, right = rn[:, lo : hi + 1], rn[:, lo - 1 : hi], rn[:, lo + 1 : hi + 2]
    is_max = (mid > left) & (mid >= right)
    score = np.where(is_max, mid - OCTAVE_COST * np.log2(fmin * lags / sr), -np.inf)
    best = np.argmax(score, axis=1)
    rows = np.arange(n_frames)
    has_peak = np.isfinite(score[rows, best])
    strength = np.where(has_peak, mid[rows, best], 0.0)
    a, b, c = left[rows, best], mid[rows, best], right[rows, best]
    denom = a - 2.0 * b + c
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(np.abs(denom) > 1e-12, 0.5 * (a - c) / denom, 0.0)
    tau = lags[best] + np.clip(shift, -0.5, 0.5)
    peak = np.max(np.abs(frames), axis=1)
    clip_peak = float(np.max(np.abs(y)))
    voiced = has_peak & (strength >= VOICING_THRESHOLD) & (peak >= SILENCE_THRESHOLD * clip_peak)
    voiced &= clip_peak > 0
    f0 = np.where(voiced, sr / tau, np.nan)
    return {
        "times": np.arange(n_frames) * hop_length / sr,
        "f0": f0,
        "strength": np.clip(strength, 0.0, None),
        "voiced": voiced,
        "rms": np.sqrt(np.mean(frames**2, axis=1)),
    }


def pitch_yin(
    y: np.ndarray,
    *,
    sr: int,
    fmin: float = PITCH_FMIN,
    fmax: float = PITCH_FMAX,
    frame_length: int = PITCH_FRAME,
    hop_length: int = PITCH_HOP,
) -> np.ndarray:
    """The pitch feature's estimator: ``librosa.yin`` per frame (same framing as :func:`pitch_fft`).

    Returns
    -------
    f0 : np.ndarray [shape=(1 + n // hop_length,)]
        Hz; YIN reports a value for every frame, voiced or not.
    """
    y = _signal(y, sr=sr)
    return librosa.yin(y, fmin=fmin, fmax=fmax, sr=sr, frame_length=frame_length,
                       hop_length=hop_length, center=True)


# --------------------------------------------------------------------------------------------
# Z-transform: linear prediction


def lpc_order(sr: int) -> int:
    """Order of the all-pole model: ``2 + sr // 1000`` (one pole pair per kHz of bandwidth, + 2)."""
    return 2 + int(sr) // 1000


def choose_voiced_frame(
    y: np.ndarray,
    *,
    sr: int,
    frame_length: int | None = None,
    track: dict[str, np.ndarray] | None = None,
) -> int | None:
    """Start of the frame the all-pole model describes: the loudest voiced frame.

    Voicing comes from :func:`pitch_fft` (``track`` if already computed): among frames whose
    normalised autocorrelation peak reaches 0.45, the one with the largest RMS; the returned
    frame of ``frame_length`` samples is centred on it.

    Returns
    -------
    start : int or None
        Sample index of the frame's first sample, or ``None`` if no frame is voiced.
    """
    y = _signal(y, sr=sr)
    frame_length = frame_length or int(round(LPC_FRAME_S * sr))
    if track is None:
        track = pitch_fft(y, sr=sr)
    voiced = np.asarray(track["voiced"], dtype=bool)
    if not voiced.any():
        return None
    rms = np.where(voiced, track["rms"], -1.0)
    centre = int(round(float(track["times"][int(np.argmax(rms))]) * sr))
    return int(np.clip(centre - frame_length // 2, 0, max(0, len(y) - frame_length)))


def lpc_system(
    frame: np.ndarray,
    *,
    sr: int,
    order: int | None = None,
    pre_emphasis: float = 0.0,
    window: str | tuple = "hann",
) -> dict[str, Any]:
    """All-pole model ``H(z) = G / A(z)`` of a frame by linear prediction (autocorrelation method).

    With ``x_w = w · x`` (after optional pre-emphasis ``x[n] - μ x[n-1]``) and
    ``r[k] = Σ_n x_w[n] x_w[n+k]``, the predictor ``A(z) = 1 + Σ_{k=1}^p a_k z^{-k}`` solves the
    Toeplitz normal equations ``Σ_j a_j r[|i-j|] = -r[i]``, ``i = 1 … p`` (Levinson–Durbin,
    :func:`scipy.linalg.solve_toeplitz`), and ``G² = r[0] + Σ_k a_k r[k]`` is the prediction
    error energy. Then ``|H(e^{jω})|² = G² / |A(e^{jω})|²`` matches ``|X_w(e^{jω})|²`` in the
    autocorrelation sense (lags 0 … p). ``r`` is positive definite, so in exact arithmetic every
    pole lies inside the unit circle; only if rounding breaks that (a pole on or outside the
    circle, ``G² ≤ 0``) is white noise of relative power 1e-9 (then ×100, up to 1e-3) added
    to ``r[0]`` and the solve repeated (``white_noise_correction`` says how much).

    Parameters
    ----------
    frame : np.ndarray [shape=(n,)]
        ``n > order``.
    sr : int
    order : int, optional
        ``p``; default :func:`lpc_order` (``2 + sr // 1000``, 18 at 16 kHz).
    pre_emphasis : float
        ``μ`` in ``x[n] - μ x[n-1]``; 0 models the frame as it is.
    window : str or tuple
        Analysis window (:func:`scipy.signal.get_window`).

    Returns
    -------
    dict
        ``a`` ``(p + 1,)`` with ``a[0] = 1``; ``gain`` G; ``poles`` ``(p,)`` complex, the roots of
        ``z^p A(z)``; ``order``; ``white_noise_correction`` (0 unless needed); ``stable`` (all
        ``|z| < 1``); ``max_pole_radius``;
        ``frame_weighted`` ``(n,)`` the windowed, pre-emphasised frame the model describes;
        ``window_sum`` ``Σ w``.

    Raises
    ------
    AudioError
        If the frame is silent (no energy to predict) or shorter than ``order + 1``.
    """
    x = _signal(frame, sr=sr)
    p = lpc_order(sr) if order is None else int(order)
    if p < 1 or len(x) <= p:
        raise AudioError(f"Linear prediction of order {p} needs more than {p} samples, got {len(x)}.")
    if pre_emphasis:
        x = np.append(x[0], x[1:] - pre_emphasis * x[:-1])
    w = scipy.signal.get_window(window, len(x), fftbins=False)
    xw = x * w
    nfft = scipy.fft.next_fast_len(len(xw) + p + 1)  # lags 0..p free of circular wrap
    r = scipy.fft.irfft(np.abs(scipy.fft.rfft(xw, nfft)) ** 2, nfft)[: p + 1]
    if not r[0] > 1e-20:
        raise AudioError("No voiced frame: the frame is silent, so there is nothing to predict.")
    correction = 0.0
    while True:
        rr = r.copy()
        rr[0] *= 1.0 + correction
        a = np.concatenate(([1.0], scipy.linalg.solve_toeplitz(rr[:p], -rr[1 : p + 1])))
        g2 = float(np.dot(a, rr))
        poles = np.roots(a)
        radius = float(np.max(np.abs(poles))) if len(poles) else 0.0
        ok = np.all(np.isfinite(a)) and g2 > 0 and radius < 1.0
        if ok or correction >= 1e-3:
            break
        correction = 1e-9 if correction == 0.0 else correction * 100.0
    return {
        "a": a,
        "gain": math.sqrt(max(g2, 0.0)),
        "poles": poles,
        "order": p,
        "white_noise_correction": correction,
        "stable": bool(radius < 1.0),
        "max_pole_radius": radius,
        "frame_weighted": xw,
        "window_sum": float(w.sum()),
    }


def frequency_response(
    a: np.ndarray, gain: float, *, sr: int, n_fft: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """``H(e^{jω}) = G / A(e^{jω})`` on ``n_fft // 2 + 1`` frequencies from 0 to ``sr/2``.

    Returns
    -------
    freqs : np.ndarray [shape=(n_fft // 2 + 1,)]
        Hz.
    H : np.ndarray [shape=(n_fft // 2 + 1,), dtype=complex128]
    """
    A = scipy.fft.rfft(np.asarray(a, dtype=np.float64), n_fft)
    return np.fft.rfftfreq(n_fft, 1.0 / sr), gain / A


# --------------------------------------------------------------------------------------------
# Laplace: s-plane, formants, continuous-time responses


def s_plane(poles: np.ndarray, *, sr: int) -> np.ndarray:
    """Map z-plane poles to the s-plane: ``s = f_s · ln z`` (principal branch, ``|Im s| ≤ π f_s``).

    ``z = r e^{jθ}`` gives ``s = f_s ln r + j f_s θ``: ``Re s < 0`` exactly when ``|z| < 1``.
    A pole at ``z = 0`` has no image (``ln 0 = -∞``) and raises :class:`AudioError`.

    Returns
    -------
    s : np.ndarray [shape=poles.shape, dtype=complex128]
        In rad/s.
    """
    z = np.asarray(poles, dtype=np.complex128)
    if np.any(z == 0):
        raise AudioError("A pole at z = 0 has no s-plane image (s = f_s ln 0 is -infinity).")
    return sr * np.log(z)


def formants(
    s_poles: np.ndarray,
    *,
    sr: int,
    min_freq_hz: float = FORMANT_MIN_HZ,
    max_bandwidth_hz: float = FORMANT_MAX_BW_HZ,
) -> dict[str, np.ndarray]:
    """Frequency and bandwidth of each complex pole pair; the narrow ones are the formants.

    For ``s = σ + jω`` (one pole of each conjugate pair, ``0 < ω < π f_s``) the resonance is at
    ``F = ω / 2π`` Hz with a −3 dB bandwidth ``B = -σ / π`` Hz (``|z| = e^{-π B / f_s}``).

    Returns
    -------
    dict
        ``freq_hz``, ``bandwidth_hz``, ``is_formant`` (``F > min_freq_hz``, ``0 < B <
        max_bandwidth_hz``, ``F < sr/2 - 50``), all ``(n_pairs,)`` sorted by frequency; and
        ``real_poles`` ``(n_real,)``: the real ``σ`` of poles with no pair (``z`` real).
    """
    s = np.asarray(s_poles, dtype=np.complex128)
    nyq_w = math.pi * sr
    tol = 1e-9 * nyq_w
    upper = (s.imag > tol) & (s.imag < nyq_w - tol)
    pair = s[upper]
    order = np.argsort(pair.imag)
    pair = pair[order]
    f = pair.imag / (2 * math.pi)
    bw = -pair.real / math.pi
    is_f = (f > min_freq_hz) & (bw > 0) & (bw < max_bandwidth_hz) & (f < sr / 2 - 50.0)
    real = s[np.abs(s.imag) <= tol].real
    real_neg_z = s[s.imag >= nyq_w - tol].real  # z < 0 maps onto Im s = π f_s
    return {
        "freq_hz": f,
        "bandwidth_hz": bw,
        "is_formant": is_f,
        "real_poles": np.sort(np.concatenate([real, real_neg_z])),
    }


def _residues(poles: np.ndarray, gain: float) -> np.ndarray:
    """``r_i`` of ``G / Π_j (1 - z_j z^{-1}) = Σ_i r_i / (1 - z_i z^{-1})``: ``G z_i^{p-1} / Π_{j≠i}(z_i - z_j)``."""
    z = np.asarray(poles, dtype=np.complex128)
    p = len(z)
    diff = z[:, None] - z[None, :]
    np.fill_diagonal(diff, 1.0)
    return gain * z ** (p - 1) / np.prod(diff, axis=1)


def continuous_responses(
    poles: np.ndarray,
    gain: float,
    *,
    sr: int,
    a: np.ndarray | None = None,
    duration_s: float | None = None,
    oversampling: int = RESPONSE_OVERSAMPLING,
) -> dict[str, Any]:
    """Impulse and step responses of the continuous-time model with the same poles (Laplace view).

    Convention (impulse invariance, ``T = 1 / f_s``): the discrete system
    ``H(z) = G / A(z) = Σ_i r_i / (1 - z_i z^{-1})`` has ``h_d[n] = Σ_i r_i z_i^n``; the
    continuous system ``H_c(s) = Σ_i c_i / (s - s_i)`` with ``s_i = f_s ln z_i`` and
    ``c_i = r_i / T`` has ``h_c(t) = Σ_i c_i e^{s_i t}``, so that

        ``T · h_c(nT) = h_d[n]``  exactly,

    and its step response is ``∫_0^t h_c = Σ_i c_i (e^{s_i t} - 1) / s_i`` (final value
    ``H_c(0) = -Σ_i c_i / s_i``). ``H_c`` has the poles ``s_i`` and, in general, ``p - 1`` finite
    zeros (impulse invariance keeps poles, not the all-pole form). The responses are evaluated
    from this pole–residue form, which is exact; going through ``scipy.signal.lti`` would expand
    a degree-18 polynomial with coefficients up to ``(π f_s)^18`` and lose the digits.

    Parameters
    ----------
    poles : np.ndarray [shape=(p,), dtype=complex]
        Distinct z-plane poles, none at 0.
    gain : float
        ``G``.
    sr : int
    a : np.ndarray [shape=(p + 1,)], optional
        ``A``'s coefficients; if given, ``h_d`` is also computed by recursion
        (:func:`scipy.signal.lfilter`) and compared to ``T · h_c(nT)``.
    duration_s : float, optional
        Default: until the slowest mode decays to 1 % (``ln 100 / min|σ|``), 2–50 ms.
    oversampling : int
        Points of the continuous curves per sampling period.

    Returns
    -------
    dict
        ``t`` ``(m,)`` s; ``impulse`` ``h_c(t)`` ``(m,)``; ``step`` ``(m,)``; ``n`` ``(k,)``
        sample indices and ``h_discrete`` ``h_d[n] / T`` on the same scale as ``h_c``;
        ``s_poles``; ``residues_c``; ``dc_gain`` ``H_c(0)``; ``invariance_error``
        ``max_n |T h_c(nT) - h_d[n]| / max_n |h_d[n]|`` (``h_d`` by recursion if ``a`` is given,
        else by the residues).
    """
    z = np.asarray(poles, dtype=np.complex128)
    T = 1.0 / sr
    s = s_plane(z, sr=sr)
    c = _residues(z, gain) / T
    if duration_s is None:
        decay = -s.real
        slow = float(np.min(decay)) if len(decay) else 0.0
        duration_s = RESPONSE_MAX_S if slow <= 0 else math.log(100.0) / slow
        duration_s = min(max(duration_s, 0.002), RESPONSE_MAX_S)
    n = np.arange(int(math.floor(duration_s * sr)) + 1)
    t = np.arange(len(n) * oversampling - oversampling + 1) * (T / oversampling)

    E = np.exp(np.outer(t, s))  # (m, p): e^{s_i t}
    impulse = (E @ c).real
    with np.errstate(divide="ignore", invalid="ignore"):
        step_terms = np.where(s != 0, (E - 1.0) / np.where(s != 0, s, 1.0), t[:, None])
    step = (step_terms @ c).real
    dc_gain = float((-np.sum(np.where(s != 0, c / np.where(s != 0, s, 1.0), 0.0))).real)
    sampled = T * (E[::oversampling] @ c).real  # t[k · oversampling] = kT
    if a is not None:
        imp = np.zeros(len(n))
        imp[0] = 1.0
        h_d = scipy.signal.lfilter([gain], np.asarray(a, dtype=np.float64), imp)
    else:
        h_d = (z[None, :] ** n[:, None] @ _residues(z, gain)).real
    scale = float(np.max(np.abs(h_d))) or 1.0
    return {
        "t": t,
        "impulse": impulse,
        "step": step,
        "n": n,
        "h_discrete": h_d / T,
        "s_poles": s,
        "residues_c": c,
        "dc_gain": dc_gain,
        "invariance_error": float(np.max(np.abs(sampled - h_d)) / scale),
    }


# --------------------------------------------------------------------------------------------
# everything, as JSON-friendly data


def _floats(x: Any, decimals: int | None = None) -> list:
    """A float array as a (nested) list: non-finite values become ``None`` (JSON null)."""
    arr = np.asarray(x, dtype=np.float64)
    if decimals is not None:
        arr = np.round(arr, decimals)
    finite = np.isfinite(arr)
    if finite.all():
        return arr.tolist()
    obj = arr.astype(object)
    obj[~finite] = None
    return obj.tolist()


def _num(x: Any) -> float | None:
    """A scalar as a finite float, or ``None``."""
    v = float(x)
    return v if math.isfinite(v) else None


def _fft_section(y: np.ndarray, sr: int, freqs: np.ndarray, db: np.ndarray) -> dict[str, Any]:
    pf, pd = spectral_peaks(freqs, db)
    f_disp, d_disp, k = _pool_max(freqs, db, MAX_SPECTRUM_POINTS)
    silent = not np.any(y)
    return {
        "available": True,
        "message": "The clip is silent: every bin is at the floor." if silent else None,
        "n": len(y),
        "resolution_hz": sr / len(y),
        "scale": f"dB re a full-scale sine: 20·log10(2|X[k]|/N), floored at {DB_FLOOR:g} dB",
        "freq_hz": _floats(f_disp, 2),
        "magnitude_db": _floats(d_disp, 2),
        "display_bins_per_point": k,
        "peaks": [{"freq_hz": float(f), "magnitude_db": float(d)} for f, d in zip(pf, pd)],
    }


def _f0_section(y: np.ndarray, sr: int, track: dict[str, np.ndarray]) -> dict[str, Any]:
    voiced = track["voiced"]
    base = {
        "fmin_hz": PITCH_FMIN,
        "fmax_hz": PITCH_FMAX,
        "frame_length": PITCH_FRAME,
        "hop_length": PITCH_HOP,
        "method_fft": "autocorrelation as the inverse FFT of each frame's power spectrum "
        "(Wiener–Khinchin), normalised by the Hann window's autocorrelation; f0 = sr / period",
        "method_feature": "librosa.yin as in the pitch feature (60–400 Hz, frames of 1024 "
        f"samples), median over the same voiced frames (hop {PITCH_HOP})",
        "voiced_fraction": float(voiced.mean()) if len(voiced) else 0.0,
    }
    if not voiced.any():
        return {**base, "available": False,
                "message": "No voiced frame: no periodicity between 60 and 400 Hz was found, "
                "so there is no fundamental frequency to estimate.",
                "fft_hz": None, "yin_hz": None, "agreement_5pct": None,
                "times_s": [], "track_fft_hz": [], "track_yin_hz": []}
    yin = pitch_yin(y, sr=sr)[: len(voiced)]
    f_fft, f_yin = track["f0"][voiced], yin[voiced]
    agree = np.abs(f_fft - f_yin) <= 0.05 * f_yin
    return {
        **base,
        "available": True,
        "message": None,
        "fft_hz": float(np.median(f_fft)),
        "yin_hz": float(np.median(f_yin)),
        "agreement_5pct": float(agree.mean()),
        "times_s": _floats(track["times"], 4),
        "track_fft_hz": _floats(track["f0"], 2),
        "track_yin_hz": _floats(np.where(voiced, yin, np.nan), 2),
    }


def _stft_section(st: dict[str, Any], sr: int, n_fft: int, hop: int) -> dict[str, Any]:
    P = np.abs(st["S"]) ** 2 * (2.0 / st["window_sum"]) ** 2  # full-scale sine -> 0 dB
    times = st["times"]
    k = max(1, math.ceil(P.shape[1] / MAX_SPECTROGRAM_FRAMES))
    if k > 1:
        m = P.shape[1] // k * k
        Pm = P[:, :m].reshape(P.shape[0], -1, k).mean(axis=2)
        tm = times[:m].reshape(-1, k).mean(axis=1)
        if m < P.shape[1]:
            Pm = np.column_stack([Pm, P[:, m:].mean(axis=1)])
            tm = np.append(tm, times[m:].mean())
        P, times = Pm, tm
    db = 10.0 * np.log10(np.maximum(P, 10.0 ** (DB_FLOOR / 10.0)))
    return {
        "available": True,
        "message": None,
        "window": "hann",
        "n_fft": n_fft,
        "win_length": n_fft,
        "hop_length": hop,
        "window_ms": 1000.0 * n_fft / sr,
        "hop_ms": 1000.0 * hop / sr,
        "overlap": 1.0 - hop / n_fft,
        "padding": n_fft - hop,
        "n_frames": int(st["S"].shape[1]),
        "frames_per_column": k,
        "description": f"|STFT|², periodic Hann window of {n_fft} samples ({1000 * n_fft / sr:g} ms), "
        f"hop {hop} samples ({1000 * hop / sr:g} ms, {100 * (1 - hop / n_fft):g} % overlap), "
        f"DFT size {n_fft}, dB re a full-scale sine"
        + (f"; {k} frames averaged per column for display" if k > 1 else ""),
        "times_s": _floats(times, 4),
        "freq_hz": _floats(st["freqs"], 2),
        "power_db": _floats(db, 1),
    }


def _parseval_section(pv: dict[str, float], st: dict[str, Any]) -> dict[str, Any]:
    norm = st["window_norm"]
    return {
        "time_energy": pv["time_energy"],
        "freq_energy": pv["freq_energy"],
        "relative_error": _num(pv["relative_error"]),
        "explanation": "Energy is the same counted in time, Σ|x[n]|², or in frequency, "
        "(1/N)Σ|X[k]|² over all N DFT bins of the whole clip; the relative error is float64 "
        "rounding.",
        "stft": {
            "frame_energy_sum": st["frame_energy_sum"],
            "window_norm": norm,
            "signal_energy": st["signal_energy"],
            "signal_energy_times_norm": norm * st["signal_energy"],
            "relative_error": _num(st["relative_error"]),
            "cola_ripple": _num(st["cola_ripple"]),
            "explanation": f"Each STFT frame obeys Parseval, and the squared Hann window repeated "
            f"every hop adds up to the constant Σw²/H = {norm:.6g}, so the frame energies "
            f"(1/N)Σ_k|X_m[k]|² sum to {norm:.6g} × the signal's energy.",
        },
    }


def _no_lpc(message: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return ({"available": False, "message": message},
            {"available": False, "message": message})


def _z_and_laplace(y: np.ndarray, sr: int, track: dict[str, np.ndarray]) -> tuple[dict, dict]:
    L = min(int(round(LPC_FRAME_S * sr)), len(y))
    p = lpc_order(sr)
    start = choose_voiced_frame(y, sr=sr, frame_length=L, track=track)
    voiced = start is not None
    note = None
    if not voiced:
        if not np.any(y):
            return _no_lpc("No voiced frame: the clip is silent, so there is no system to model.")
        hop = max(1, L // 2)
        e = [float(np.dot(y[i : i + L], y[i : i + L])) for i in range(0, len(y) - L + 1, hop)]
        start = hop * int(np.argmax(e))
        note = ("No voiced frame (no periodicity between 60 and 400 Hz); the all-pole model "
                "describes the loudest frame instead.")
    frame = y[start : start + L]
    if not np.any(frame):
        return _no_lpc("No voiced frame: the chosen frame is silent.")
    try:
        lpc = lpc_system(frame, sr=sr, order=p, pre_emphasis=PRE_EMPHASIS)
    except AudioError as e:
        return _no_lpc(str(e))
    a = np.trim_zeros(lpc["a"], "b")  # a pole at z = 0 cancels a zero there: drop both
    if len(a) == 1:
        return _no_lpc("The frame is white: its best predictor is zero, so H(z) has no poles.")
    poles = np.roots(a)
    n_fft = 1024
    freqs, H = frequency_response(a, lpc["gain"], sr=sr, n_fft=n_fft)
    Xw = scipy.fft.rfft(lpc["frame_weighted"], n_fft)
    scale = 2.0 / lpc["window_sum"]
    floor = 10.0 ** (DB_FLOOR / 20.0)
    pw = np.abs(Xw) ** 2
    k = int(np.argmax(pw))
    lobe = int(math.ceil(2 * n_fft / L))  # Hann main lobe: ±2 bins of the frame's own DFT
    if pw[max(0, k - lobe) : k + lobe + 1].sum() > 0.99 * pw.sum():
        tone = ("The frame is (nearly) constant: it has no formants." if k <= lobe else
                f"The frame is (nearly) a pure tone at {freqs[k]:.0f} Hz: it has no formants, and "
                f"the model's narrowest poles sit within the window's main lobe "
                f"(±{2 * sr / L:.0f} Hz) around the tone.")
        note = tone if note is None else f"{note} {tone}"
    z_sec = {
        "available": True,
        "message": note,
        "voiced": voiced,
        "frame_start_s": start / sr,
        "frame_length": L,
        "frame_ms": 1000.0 * L / sr,
        "order": len(a) - 1,
        "pre_emphasis": PRE_EMPHASIS,
        "window": "hann",
        "a": _floats(a),
        "gain": lpc["gain"],
        "poles_re": _floats(poles.real),
        "poles_im": _floats(poles.imag),
        "pole_radius": _floats(np.abs(poles)),
        "n_zeros_at_origin": len(a) - 1,
        "stable": bool(np.all(np.abs(poles) < 1.0)),
        "max_pole_radius": float(np.max(np.abs(poles))),
        "freq_hz": _floats(freqs, 2),
        "response_db": _floats(20 * np.log10(np.maximum(scale * np.abs(H), floor)), 2),
        "frame_spectrum_db": _floats(20 * np.log10(np.maximum(scale * np.abs(Xw), floor)), 2),
        "explanation": f"H(z) = G / A(z) with A(z) = 1 + Σ a_k z^-k of order {len(a) - 1} "
        f"(2 + sr/1000) fitted to a {1000 * L / sr:g} ms Hann-windowed frame pre-emphasised by "
        f"1 - {PRE_EMPHASIS:g} z^-1; its {len(a) - 1} poles are the roots of A and its zeros "
        "all sit at z = 0; the system is stable when every pole is inside the unit circle.",
    }
    cr = continuous_responses(poles, lpc["gain"], sr=sr, a=a)
    fm = formants(cr["s_poles"], sr=sr)
    pairs = [
        {"freq_hz": float(f), "bandwidth_hz": float(b), "sigma": float(-math.pi * b),
         "omega": float(2 * math.pi * f), "is_formant": bool(i)}
        for f, b, i in zip(fm["freq_hz"], fm["bandwidth_hz"], fm["is_formant"])
    ]
    named = [q for q in pairs if q["is_formant"]]
    lap = {
        "available": True,
        "message": note,
        "s_re": _floats(cr["s_poles"].real),
        "s_im": _floats(cr["s_poles"].imag),
        "pairs": pairs,
        "formants": [{"name": f"F{i + 1}", "freq_hz": q["freq_hz"], "bandwidth_hz": q["bandwidth_hz"]}
                     for i, q in enumerate(named)],
        "real_poles_sigma": _floats(fm["real_poles"]),
        "convention": "s = f_s·ln z; H_c(s) = Σ c_i/(s - s_i) with c_i = f_s·r_i (impulse "
        "invariance), so T·h_c(nT) = h_d[n]; F = Im(s)/2π, B = -Re(s)/π.",
        "t_s": _floats(cr["t"], 7),
        "impulse": _floats(cr["impulse"], 6),
        "step": _floats(cr["step"], 6),
        "n": [int(v) for v in cr["n"]],
        "impulse_discrete": _floats(cr["h_discrete"], 6),
        "invariance_error": _num(cr["invariance_error"]),
        "dc_gain": _num(cr["dc_gain"]),
        "explanation": "Each pole z = r·e^{jθ} becomes s = f_s·ln r + j·f_s·θ: the angle sets the "
        "formant frequency F = θ·f_s/2π and the radius its bandwidth B = -ln(r)·f_s/π; a "
        "continuous system with those poles and impulse-invariant residues rings like the "
        f"vocal tract, and its response sampled every 1/f_s equals the discrete one "
        f"(max relative difference {cr['invariance_error']:.1e}).",
    }
    return z_sec, lap


def analyze(y: np.ndarray, *, sr: int = SAMPLE_RATE) -> dict[str, Any]:
    """All the signal mathematics of one clip, as JSON-serialisable data.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono audio, e.g. from :func:`ser.audio.load_audio`; at least :data:`STFT_N_FFT` samples.
    sr : int
        Sample rate in Hz (the log-mel image exists only at 16 kHz).

    Returns
    -------
    dict
        Only ``str``, ``int``, ``float``, ``bool``, ``None``, lists and dicts (``json.dumps(...,
        allow_nan=False)`` works). Keys:

        - ``sr``, ``n_samples``, ``duration_s``, ``messages`` (list of str for the user);
        - ``fft``: ``freq_hz``/``magnitude_db`` (max-pooled to ≤ 2048 points), ``n``,
          ``resolution_hz``, ``scale``, ``peaks`` [{``freq_hz``, ``magnitude_db``}];
        - ``f0``: ``fft_hz`` and ``yin_hz`` (medians over voiced frames), ``agreement_5pct``,
          ``voiced_fraction``, tracks ``times_s``/``track_fft_hz``/``track_yin_hz``;
        - ``stft``: window, ``n_fft``, ``hop_length``, ``window_ms``, ``hop_ms``, ``description``,
          ``times_s``, ``freq_hz``, ``power_db`` ``(n_freq, n_columns)``;
        - ``logmel``: ``image`` 128×128 in [-1, 1] (the CNN input) and its settings;
        - ``parseval``: ``time_energy``, ``freq_energy``, ``relative_error``, ``explanation``,
          ``stft`` {``frame_energy_sum``, ``window_norm``, ``signal_energy_times_norm``,
          ``relative_error``, ``cola_ripple``, ``explanation``};
        - ``z``: the all-pole model (``a``, ``gain``, ``poles_re``/``poles_im``, ``stable``,
          ``max_pole_radius``, ``freq_hz``, ``response_db``, ``frame_spectrum_db``, ...);
        - ``laplace``: ``s_re``/``s_im``, ``pairs``, ``formants``, ``t_s``, ``impulse``,
          ``step``, ``n``, ``impulse_discrete``, ``invariance_error``, ``convention``.

        Every section has ``available`` (bool) and ``message`` (str or None); when a section
        cannot be computed (silence, no voiced frame) it says why instead of holding NaN.

    Raises
    ------
    AudioError
        For unusable input: not 1-D, non-finite samples, shorter than 32 ms at 16 kHz.
    """
    y = _signal(y, sr=sr, min_samples=STFT_N_FFT)
    messages: list[str] = []
    X = scipy.fft.rfft(y)  # the one FFT of the whole clip: spectrum and Parseval
    freqs, db = np.fft.rfftfreq(len(y), 1.0 / sr), amplitude_db(X, n=len(y))
    fft = _fft_section(y, sr, freqs, db)
    track = pitch_fft(y, sr=sr)
    f0 = _f0_section(y, sr, track)
    st = stft_energy(y, sr=sr, n_fft=STFT_N_FFT, hop_length=STFT_HOP, window="hann")
    stft = _stft_section(st, sr, STFT_N_FFT, STFT_HOP)
    if sr == SAMPLE_RATE:
        cfg = SpectrogramConfig()
        logmel = {
            "available": True,
            "message": None,
            "image": _floats(logmel_image(y.astype(np.float32), config=cfg), 3),
            "n_mels": cfg.n_mels,
            "n_frames": cfg.n_frames,
            "n_fft": cfg.n_fft,
            "win_length": cfg.win_length,
            "hop_length": cfg.hop_length,
            "fmax_hz": cfg.fmax,
            "window_s": cfg.window_s,
            "description": f"The CNN's input: {cfg.n_mels} mel bands × {cfg.n_frames} frames "
            f"(Hann {cfg.win_length} samples, hop {cfg.hop_length}, {cfg.window_s:.2f} s; the "
            "middle window of a longer clip), dB re the clip's loudest bin mapped to [-1, 1].",
        }
    else:
        logmel = {"available": False,
                  "message": f"The CNN's log-mel image is defined at {SAMPLE_RATE} Hz, not {sr} Hz."}
    if f0["available"] and fft["peaks"]:
        # is there energy at the estimated f0, or is the period that of a missing fundamental?
        band = (freqs > 0.9 * f0["fft_hz"]) & (freqs < 1.1 * f0["fft_hz"])
        top = fft["peaks"][0]
        if band.any() and float(db[band].max()) < top["magnitude_db"] - 40:
            f0["message"] = (
                f"The spectrum has almost no energy at {f0['fft_hz']:.0f} Hz (its strongest peak "
                f"is at {top['freq_hz']:.0f} Hz): the period is real but the fundamental is "
                f"missing or above {PITCH_FMAX:g} Hz (a pure tone above {PITCH_FMAX:g} Hz reads "
                "as a subharmonic)."
            )
    z_sec, lap = _z_and_laplace(y, sr, track)
    pv = _parseval_section(parseval(y, X=X), st)
    for sec in (fft, f0, logmel, z_sec):
        if sec.get("message") and sec["message"] not in messages:
            messages.append(sec["message"])
    return {
        "sr": int(sr),
        "n_samples": int(len(y)),
        "duration_s": len(y) / sr,
        "messages": messages,
        "fft": fft,
        "f0": f0,
        "stft": stft,
        "logmel": logmel,
        "parseval": pv,
        "z": z_sec,
        "laplace": lap,
    }
