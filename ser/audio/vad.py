"""Voice-activity detection: where a long recording holds speech, as segments a model can hear.

:func:`voiced_segments` turns a recording into a list of ``(start_s, end_s)`` segments::

    gain-normalise  ->  frame decisions (WebRTC VAD, else an energy rule)
    ->  merge gaps shorter than merge_gap_s  ->  drop runs shorter than min_segment_s
    ->  pad each by pad_s  ->  split runs longer than max_segment_s into equal windows

The WebRTC VAD is Google's GMM detector as shipped in the ``webrtcvad-wheels`` package (compiled
C, nothing downloaded at run time). It reads 10/20/30 ms frames of 16-bit PCM at 8, 16, 32 or
48 kHz. Its decisions depend on level, so the recording is first scaled so that its loud
samples (the 99.9th percentile of ``|y|``) sit at :data:`NORMALISED_LEVEL` of full scale: the
same speech gives the same segments whatever the recording gain.

The energy rule (``method="energy"``, and the fallback when ``webrtcvad`` is not installed) is
the one silence trimming uses (:data:`ser.audio.TOP_DB`): a frame is speech when its RMS is within
``top_db`` of the loud frames (the 99th percentile of frame RMS, so one click does not mute the
rest).

Both keep only frames at least :data:`SNR_DB` above the recording's noise floor (the 10th
percentile of frame RMS). WebRTC alone calls stationary noise above about -50 dBFS speech
(measured: 70 % of white-noise frames at -40 dBFS), and normalising the gain would lift any
quiet noise there; with the floor rule a recording of room noise alone has no segments.

Defaults follow what the models were trained on: RAVDESS sentences last 1.5–2.5 s once trimmed,
so segments are at least :data:`MIN_SEGMENT_S` (the loader's ``MIN_VOICED_S``) and at most
:data:`MAX_SEGMENT_S` long.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import AudioError
from .io import MIN_VOICED_S, SAMPLE_RATE, TOP_DB, resample

__all__ = [
    "FRAME_MS",
    "AGGRESSIVENESS",
    "MIN_SEGMENT_S",
    "MAX_SEGMENT_S",
    "MERGE_GAP_S",
    "PAD_S",
    "NORMALISED_LEVEL",
    "SNR_DB",
    "FLOOR_PERCENTILE",
    "WEBRTC_RATES",
    "METHODS",
    "webrtc_available",
    "default_method",
    "speech_frames",
    "frames_to_segments",
    "split_long",
    "voiced_segments",
]

FRAME_MS = 30  # ms per decision; WebRTC accepts 10, 20 or 30 (480 samples at 16 kHz)
AGGRESSIVENESS = 2  # WebRTC mode 0 (keeps most) .. 3 (drops most non-speech)
MIN_SEGMENT_S = MIN_VOICED_S  # 0.5 s: shorter voiced runs are clicks, breaths or a syllable
MAX_SEGMENT_S = 4.0  # s; about one RAVDESS sentence with its margins, what the models saw
MERGE_GAP_S = 0.3  # s; pauses shorter than this (between words) do not split a segment
PAD_S = 0.1  # s of context kept before and after each voiced run (onsets, final consonants)
NORMALISED_LEVEL = 0.5  # loud samples scaled to half full scale before the 16-bit WebRTC VAD
SNR_DB = 6.0  # a speech frame is at least this far above the recording's noise floor...
FLOOR_PERCENTILE = 10  # ...the RMS that 10 % of its frames stay under (pauses; the noise itself)
WEBRTC_RATES = (8_000, 16_000, 32_000, 48_000)
METHODS = ("auto", "webrtc", "energy")
_SILENT_PEAK = 10 ** (-70 / 20)  # the loader's silence rule: below -70 dBFS there is no voice


def webrtc_available() -> bool:
    """True when the ``webrtcvad`` module (package ``webrtcvad-wheels``) can be imported."""
    try:
        import webrtcvad  # noqa: F401
    except ImportError:
        return False
    return True


def default_method() -> str:
    """``"webrtc"`` when available, else ``"energy"``."""
    return "webrtc" if webrtc_available() else "energy"


def _check_signal(y: np.ndarray, sr: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise AudioError(f"Expected mono audio of shape (n,), got shape {y.shape}.")
    if not np.issubdtype(y.dtype, np.floating):
        raise AudioError(f"Expected float audio in [-1, 1], got dtype {y.dtype}; load it with ser.load_audio.")
    if not (isinstance(sr, (int, np.integer)) and sr > 0):
        raise ValueError(f"sr must be a positive whole number of Hz, got {sr!r}.")
    if y.size and not np.isfinite(y).all():
        raise AudioError("The audio holds NaN or infinite samples.")
    return y.astype(np.float32, copy=False)


def speech_frames(
    y: np.ndarray,
    *,
    sr: int = SAMPLE_RATE,
    method: str = "auto",
    frame_ms: int = FRAME_MS,
    aggressiveness: int = AGGRESSIVENESS,
    top_db: float = TOP_DB,
) -> np.ndarray:
    """Speech / non-speech decision of every ``frame_ms`` frame.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono float audio.
    sr : int
        Its sample rate; WebRTC needs 8/16/32/48 kHz, so other rates are resampled to 16 kHz for
        the decisions only.
    method : {"auto", "webrtc", "energy"}
    frame_ms : {10, 20, 30}
    aggressiveness : {0, 1, 2, 3}
        WebRTC mode: higher drops more non-speech (and some speech).
    top_db : float
        Energy rule: speech is within ``top_db`` dB of the loud frames.

    Returns
    -------
    speech : np.ndarray [shape=(n_frames,), dtype=bool]
        Frame ``i`` covers samples ``[i * hop, (i + 1) * hop)`` of ``y`` with
        ``hop = sr * frame_ms / 1000``; a partial last frame is dropped.
    """
    y = _check_signal(y, sr)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if frame_ms not in (10, 20, 30):
        raise ValueError(f"frame_ms must be 10, 20 or 30, got {frame_ms!r}.")
    if method == "auto":
        method = default_method()
    hop = sr * frame_ms // 1000
    n_frames = len(y) // hop
    if n_frames == 0:
        return np.zeros(0, dtype=bool)
    ref = float(np.percentile(np.abs(y), 99.9))
    if ref < _SILENT_PEAK:  # digital silence or near it: no voice anywhere
        return np.zeros(n_frames, dtype=bool)
    if method == "webrtc" and aggressiveness not in (0, 1, 2, 3):
        raise ValueError(f"aggressiveness must be 0, 1, 2 or 3, got {aggressiveness!r}.")
    frames = y[: n_frames * hop].reshape(n_frames, hop).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    floor = float(np.percentile(rms, FLOOR_PERCENTILE))
    above_floor = rms > floor * 10 ** (SNR_DB / 20)  # gain-invariant; a noise-only recording has none
    if method == "energy":
        loud = float(np.percentile(rms, 99))
        return above_floor & (rms > loud * 10 ** (-top_db / 20))
    return above_floor & _webrtc_frames(y, sr=sr, ref=ref, frame_ms=frame_ms, aggressiveness=aggressiveness,
                                        n_frames=n_frames)


def _webrtc_frames(y: np.ndarray, *, sr: int, ref: float, frame_ms: int, aggressiveness: int,
                   n_frames: int) -> np.ndarray:
    import webrtcvad

    rate = sr if sr in WEBRTC_RATES else SAMPLE_RATE
    x = y if rate == sr else resample(y, orig_sr=sr, sr=rate)
    pcm = (np.clip(x * (NORMALISED_LEVEL / ref), -1.0, 1.0) * 32767).astype("<i2").tobytes()
    step = rate * frame_ms // 1000 * 2  # bytes per frame
    vad = webrtcvad.Vad(aggressiveness)
    is_speech = vad.is_speech
    decisions = np.fromiter((is_speech(pcm[i:i + step], rate) for i in range(0, len(pcm) - step + 1, step)),
                            dtype=bool)
    if len(decisions) >= n_frames:  # resampling may round the length by a frame
        return decisions[:n_frames]
    return np.pad(decisions, (0, n_frames - len(decisions)))


def frames_to_segments(
    speech: np.ndarray,
    *,
    frame_s: float,
    duration_s: float,
    min_segment_s: float = MIN_SEGMENT_S,
    merge_gap_s: float = MERGE_GAP_S,
    pad_s: float = PAD_S,
) -> list[tuple[float, float]]:
    """Voiced runs of frame decisions, gaps merged, short runs dropped, padded, in seconds.

    Parameters
    ----------
    speech : np.ndarray [shape=(n_frames,), dtype=bool]
    frame_s : float
        Duration of one frame in seconds.
    duration_s : float
        Length of the recording (the last segment ends there at the latest).

    Returns
    -------
    list of (start_s, end_s)
        Sorted, disjoint, each at least ``min_segment_s`` of voice before padding.
    """
    speech = np.asarray(speech, dtype=bool)
    if not speech.any():
        return []
    edges = np.diff(np.concatenate([[0], speech.view(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # frame indices, end exclusive
    runs: list[list[int]] = []
    gap = round(merge_gap_s / frame_s)
    for a, b in zip(starts.tolist(), ends.tolist()):
        if runs and a - runs[-1][1] <= gap:
            runs[-1][1] = b
        else:
            runs.append([a, b])
    segments: list[tuple[float, float]] = []
    for a, b in runs:
        if (b - a) * frame_s + 1e-9 < min_segment_s:
            continue
        start = max(0.0, a * frame_s - pad_s)
        end = min(duration_s, b * frame_s + pad_s)
        if segments and start <= segments[-1][1]:  # padding made neighbours touch: one segment
            segments[-1] = (segments[-1][0], end)
        else:
            segments.append((start, end))
    return [(round(a, 3), round(b, 3)) for a, b in segments]


def split_long(segments, *, max_segment_s: float = MAX_SEGMENT_S) -> list[tuple[float, float]]:
    """Cut each segment longer than ``max_segment_s`` into the fewest equal windows that fit.

    A 10 s segment with ``max_segment_s=4`` becomes three windows of 3.33 s, never a 4 + 4 + 2
    split with a short tail.
    """
    if not max_segment_s > 0:
        raise ValueError(f"max_segment_s must be > 0, got {max_segment_s!r}.")
    out: list[tuple[float, float]] = []
    for a, b in segments:
        n = max(1, math.ceil((b - a) / max_segment_s - 1e-9))
        edges = np.linspace(a, b, n + 1)
        out += [(round(float(s), 3), round(float(e), 3)) for s, e in zip(edges[:-1], edges[1:])]
    return out


def voiced_segments(
    y: np.ndarray,
    *,
    sr: int = SAMPLE_RATE,
    method: str = "auto",
    aggressiveness: int = AGGRESSIVENESS,
    frame_ms: int = FRAME_MS,
    min_segment_s: float = MIN_SEGMENT_S,
    max_segment_s: float | None = MAX_SEGMENT_S,
    merge_gap_s: float = MERGE_GAP_S,
    pad_s: float = PAD_S,
    top_db: float = TOP_DB,
) -> list[tuple[float, float]]:
    """Segments of a recording that hold speech, ready to be predicted one by one.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono float audio (as :func:`ser.audio.load_audio` returns it, untrimmed for long audio).
    sr : int
        Sample rate of ``y``.
    method : {"auto", "webrtc", "energy"}
        Frame decisions: the WebRTC VAD, or the energy rule; ``"auto"`` takes WebRTC when
        installed.
    aggressiveness : {0, 1, 2, 3}
        WebRTC mode.
    frame_ms : {10, 20, 30}
        Decision frame.
    min_segment_s : float
        Voiced runs shorter than this (after merging) are dropped.
    max_segment_s : float or None
        Longer segments are split into equal windows no longer than this; ``None`` keeps them
        whole. Must be at least ``2 * min_segment_s`` so that no window is shorter than the
        minimum.
    merge_gap_s : float
        Pauses up to this long join their neighbours.
    pad_s : float
        Context added on each side of a voiced run (segments that then touch are joined).
    top_db : float
        Threshold of the energy rule.

    Returns
    -------
    list of (start_s, end_s)
        Sorted, non-overlapping, within ``[0, len(y) / sr]``, rounded to the millisecond; each
        lasts at least ``min_segment_s`` and at most ``max_segment_s``. Empty when nothing is
        voiced.

    Examples
    --------
    >>> import numpy as np
    >>> sr = 16000
    >>> t = np.arange(sr) / sr
    >>> tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    >>> y = np.concatenate([np.zeros(sr), tone, np.zeros(sr)]).astype(np.float32)
    >>> voiced_segments(y, sr=sr, method="energy")
    [(0.9, 2.1)]
    """
    for name, value in (("min_segment_s", min_segment_s), ("merge_gap_s", merge_gap_s), ("pad_s", pad_s)):
        if not (value >= 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}.")
    if max_segment_s is not None and not max_segment_s >= 2 * min_segment_s:
        raise ValueError(f"max_segment_s must be at least 2 * min_segment_s = {2 * min_segment_s:g} s "
                         f"(else a split could leave a window shorter than the minimum), got {max_segment_s!r}.")
    y = _check_signal(y, sr)
    speech = speech_frames(y, sr=sr, method=method, frame_ms=frame_ms, aggressiveness=aggressiveness,
                           top_db=top_db)
    hop = sr * frame_ms // 1000
    segments = frames_to_segments(speech, frame_s=hop / sr, duration_s=len(y) / sr,
                                  min_segment_s=min_segment_s, merge_gap_s=merge_gap_s, pad_s=pad_s)
    if max_segment_s is not None:
        segments = split_long(segments, max_segment_s=max_segment_s)
    return segments
