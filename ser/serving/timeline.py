"""Emotion over time: a long recording as voiced segments, each with an emotion; and a live stream.

Long audio (:func:`timeline`, :func:`timeline_report`)::

    load_long (no trimming: times are the recording's own; up to SER_MAX_TIMELINE_S)
    -> ser.vad.voiced_segments (WebRTC VAD; long runs split into windows of at most 4 s)
    -> each segment trimmed as training clips were -> Recognizer.predict_proba_batch (one batch)
    -> [{start, end, emotion, confidence, uncertain, probabilities}]

:func:`to_csv`, :func:`to_json` and :func:`export_files` write the result for download;
:func:`figure` draws it against the waveform (:func:`ser.plots.emotion_timeline_figure`).

Live (:class:`StreamState`, :func:`stream_update`, :func:`stream_stop`): microphone chunks go into
a ring buffer of the last ``window_s`` seconds; about once every ``every_s`` seconds of audio the
window is predicted, and the emotion shown is the mean of the last ``n_smooth`` voiced windows'
probabilities, so one odd window does not flip it. Nothing here knows about Gradio: the state is
a plain dataclass (deep-copyable, as ``gr.State`` needs) and chunks are ``(sample_rate, samples)``.

Limits: :func:`ser.settings.max_timeline_s` (two hours; one prediction's limit, ten minutes, suits
a clip but not a meeting) and :func:`ser.settings.max_timeline_bytes` (512 MiB).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go

from .. import settings
from ..audio.io import (SAMPLE_RATE, AudioSource, decode, load_audio, remove_dc, resample, to_mono,
                        trim_silence)
from ..audio.vad import (AGGRESSIVENESS, MAX_SEGMENT_S, MERGE_GAP_S, MIN_SEGMENT_S, PAD_S, default_method,
                         voiced_segments)
from ..errors import AudioError, ParameterError, SerError
from ..models.base import Recognizer
from ..models.registry import ModelRegistry, get_recognizer
from ..models.speaker import MIN_ENROL_CLIPS, SpeakerProfile
from ..plots import emotion_timeline_figure

__all__ = [
    "ENVELOPE_POINTS",
    "load_long",
    "ADAPT_MODES",
    "SELF_ADAPT_FROM",
    "SELF_ADAPT_MAX",
    "timeline",
    "adapted_timeline",
    "self_profile",
    "timeline_report",
    "summarize",
    "envelope",
    "to_csv",
    "to_json",
    "export_files",
    "figure",
    "StreamState",
    "stream_update",
    "stream_stop",
]

ENVELOPE_POINTS = 2000  # min/max pairs of the waveform drawn under the timeline (~40 KB of JSON)
#: Self-adaptation of a timeline (``adapt=``): ``"auto"`` adapts to the recording's own voice from
#: :data:`SELF_ADAPT_FROM` segments on (when no speaker profile is given), ``"self"`` whenever there are
#: enough segments to enrol, ``"off"`` never (a speaker profile given is used in every mode but ``"self"``).
ADAPT_MODES = ("auto", "self", "off")
#: Fewest voiced segments from which ``adapt="auto"`` adapts a timeline to the recording itself (one
#: speaker assumed); ``None``: never. Chosen from ``python -m bench.timeline_adapt``
#: (``reports/timeline_adapt.json``, its ``default_from_segments``; a test checks they agree): on
#: recordings of unseen RAVDESS actors it gained segment UAR in every draw from 12 clips (12 segments) on,
#: not below (4-8 segments: a gain on average, a loss in one draw of three).
SELF_ADAPT_FROM: int | None = 12
#: Segments a recording's own profile is enrolled from, at most (evenly spread over the recording):
#: enrolment computes their features once more, so a long recording pays for this many, not for all.
SELF_ADAPT_MAX = 64


def load_long(source: AudioSource, *, sr: int = SAMPLE_RATE, max_duration: float | None = None,
              max_size: int | None = None) -> np.ndarray:
    """A long recording as float32 mono at ``sr``, untrimmed, up to :func:`ser.settings.max_timeline_s`.

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
    """
    return load_audio(source, sr=sr, trim=False,
                      max_duration=settings.max_timeline_s() if max_duration is None else max_duration,
                      max_size=settings.max_timeline_bytes() if max_size is None else max_size)


def adapted_timeline(
    y: np.ndarray,
    recognizer: Recognizer,
    *,
    sr: int = SAMPLE_RATE,
    segments: Sequence[tuple[float, float]] | None = None,
    method: str = "auto",
    aggressiveness: int = AGGRESSIVENESS,
    min_segment_s: float = MIN_SEGMENT_S,
    max_segment_s: float = MAX_SEGMENT_S,
    merge_gap_s: float = MERGE_GAP_S,
    pad_s: float = PAD_S,
    threshold: float | None = None,
    speaker: SpeakerProfile | None = None,
    adapt: str = "off",
) -> tuple[list[dict], dict]:
    """The emotion of every voiced segment of a recording, adapted to a speaker when asked.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        The whole recording, untrimmed (:func:`load_long`).
    recognizer : Recognizer
        Any model (MLP, CNN, ensemble); ``y`` is resampled to its rate when ``sr`` differs.
    sr : int
        Sample rate of ``y``.
    segments : sequence of (start_s, end_s), optional
        Segments to predict; by default :func:`ser.vad.voiced_segments` with the VAD settings
        given (see there).
    threshold : float, optional
        Top probability under which a segment is ``uncertain`` (default
        :func:`ser.recognizer.uncertain_below`).
    speaker : SpeakerProfile, optional
        Adapt every segment to this speaker (a model that cannot adapt raises ``ModelError``).
    adapt : {"auto", "self", "off"}
        Self-adaptation (:data:`ADAPT_MODES`): the recording's own segments enrolled as one speaker
        (:func:`self_profile`) and every segment predicted with that profile. ``"auto"`` does it from
        :data:`SELF_ADAPT_FROM` segments on when no ``speaker`` is given and the model can adapt;
        ``"self"`` whenever at least :data:`~ser.models.speaker.MIN_ENROL_CLIPS` segments are usable
        (instead of ``speaker``); ``"off"`` never.

    Returns
    -------
    segments : list of dict
        One per segment, in time order: ``start``, ``end`` (seconds), ``emotion``,
        ``confidence`` (its probability), ``uncertain``, ``probabilities`` {label: p} in the
        model's label order. Empty when nothing is voiced.
    adaptation : dict
        ``adapted`` (bool), ``source`` (``"profile"``, ``"self"`` or ``None``), ``n_clips`` (clips or
        segments the profile holds), ``note`` (why it was or was not adapted; ``""`` when nothing was asked).

    Notes
    -----
    Each segment is trimmed of leading and trailing silence as training clips were
    (``recognizer.audio["top_db"]``) unless that leaves less than ``min_voiced_s``; the reported
    times stay the segment's. All segments are predicted in one batch
    (:meth:`Recognizer.predict_proba_batch`).
    """
    threshold = settings.uncertain_below() if threshold is None else float(threshold)
    if adapt not in ADAPT_MODES:
        raise ParameterError(f"adapt must be one of {', '.join(ADAPT_MODES)}; got {str(adapt)[:40]!r}.")
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise AudioError(f"Expected mono audio of shape (n,), got shape {y.shape}.")
    rec_sr = int(recognizer.audio["sr"])
    if sr != rec_sr:
        y = resample(y, orig_sr=sr, sr=rec_sr)
    if segments is None:
        segments = voiced_segments(y, sr=rec_sr, method=method, aggressiveness=aggressiveness,
                                   min_segment_s=min_segment_s, max_segment_s=max_segment_s,
                                   merge_gap_s=merge_gap_s, pad_s=pad_s)
    segments = [(float(a), float(b)) for a, b in segments]
    if not segments:
        return [], _adaptation(None, None, "")
    need = math.ceil(float(recognizer.audio["min_voiced_s"]) * rec_sr)
    clips = []
    for a, b in segments:
        seg = remove_dc(y[round(a * rec_sr): round(b * rec_sr)])  # as the loader makes a clip DC-free
        if recognizer.audio.get("trim", True) and len(seg):
            trimmed = trim_silence(seg, top_db=float(recognizer.audio["top_db"]))
            if len(trimmed) >= need:
                seg = trimmed
        clips.append(seg)
    profile, adaptation = _choose_profile(recognizer, clips, speaker=speaker, adapt=adapt)
    P = recognizer.predict_proba_batch(clips, speaker=profile)
    labels = list(recognizer.labels)
    out = []
    for (a, b), p in zip(segments, P):
        best = int(np.argmax(p))
        out.append({
            "start": round(a, 3), "end": round(b, 3), "emotion": labels[best],
            "confidence": round(float(p[best]), 6), "uncertain": bool(p[best] < threshold),
            "probabilities": {lab: round(float(v), 6) for lab, v in zip(labels, p)},
        })
    return out, adaptation


def timeline(y: np.ndarray, recognizer: Recognizer, **kwargs) -> list[dict]:
    """The segments of :func:`adapted_timeline` (same parameters): the emotion of every voiced segment
    of a recording, in time order; unadapted unless ``speaker`` or ``adapt`` ask for it."""
    return adapted_timeline(y, recognizer, **kwargs)[0]


def _adaptation(source: str | None, n_clips: int | None, note: str) -> dict:
    return {"adapted": source is not None, "source": source, "n_clips": n_clips, "note": note}


def self_profile(recognizer: Recognizer, clips: Sequence[np.ndarray], *,
                 max_clips: int = SELF_ADAPT_MAX) -> SpeakerProfile:
    """A profile of a recording's own voice from its segments (loaded clips, as :func:`adapted_timeline`
    predicts them; one speaker assumed): at most ``max_clips`` of them, evenly spread, unusable ones
    (too short) left out. :class:`~ser.errors.EnrolmentError` with fewer than
    :data:`~ser.models.speaker.MIN_ENROL_CLIPS` usable; ``ModelError`` for a model that cannot adapt."""
    picked = np.unique(np.linspace(0, len(clips) - 1, min(len(clips), int(max_clips))).round().astype(int))
    return recognizer.enroll([clips[i] for i in picked], names=[f"segment {i + 1}" for i in picked],
                             loaded=True, skip_unusable=True)


def _choose_profile(recognizer: Recognizer, clips: Sequence[np.ndarray], *, speaker: SpeakerProfile | None,
                    adapt: str) -> tuple[SpeakerProfile | None, dict]:
    """The profile a timeline's segments are predicted with, and what the result says of it."""
    can_adapt = bool(recognizer.adaptation_spaces())
    wants_self = adapt == "self" or (adapt == "auto" and speaker is None and can_adapt
                                     and SELF_ADAPT_FROM is not None and len(clips) >= max(SELF_ADAPT_FROM, MIN_ENROL_CLIPS))
    if not wants_self:
        if speaker is None:
            return None, _adaptation(None, None, "")
        return speaker, _adaptation("profile", speaker.n_clips, f"adapted to the speaker ({speaker.n_clips} clips)")
    if not can_adapt:
        return None, _adaptation(None, None, recognizer.cannot_adapt_message())
    try:
        profile = self_profile(recognizer, clips)
    except SerError as e:  # too few usable segments: unadapted, and why
        return None, _adaptation(None, None, f"not adapted to the recording's own voice: {e}")
    return profile, _adaptation("self", profile.n_clips, f"adapted to the recording's own voice ({profile.n_clips} "
                                                         "segments, one speaker assumed)")


def summarize(segments: Sequence[dict], labels: Sequence[str]) -> dict:
    """Seconds per emotion and the dominant one (largest duration-weighted mean probability).

    Returns
    -------
    dict
        ``voiced_s``, ``seconds`` {label: s labelled so}, ``mean_probabilities`` {label: p}
        (weighted by segment duration), ``dominant`` (``None`` without segments).
    """
    seconds = {lab: 0.0 for lab in labels}
    weighted = np.zeros(len(labels))
    total = 0.0
    for s in segments:
        d = float(s["end"]) - float(s["start"])
        seconds[s["emotion"]] = seconds.get(s["emotion"], 0.0) + d
        weighted += d * np.array([s["probabilities"][lab] for lab in labels])
        total += d
    mean = weighted / total if total > 0 else weighted
    return {
        "voiced_s": round(total, 3),
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "mean_probabilities": {lab: round(float(v), 6) for lab, v in zip(labels, mean)},
        "dominant": labels[int(mean.argmax())] if total > 0 else None,
    }


def envelope(y: np.ndarray, *, sr: int = SAMPLE_RATE, points: int = ENVELOPE_POINTS) -> dict:
    """Min and max of the waveform over ``points`` equal spans (what a plot of it can show).

    Returns
    -------
    dict
        ``t`` (span centres, s), ``min``, ``max``: lists of ``<= points`` floats (4 decimals).
    """
    y = np.asarray(y, dtype=np.float32)
    if len(y) == 0 or points < 1:
        return {"t": [], "min": [], "max": []}
    k = max(1, math.ceil(len(y) / points))
    m = math.ceil(len(y) / k)
    padded = np.pad(y, (0, m * k - len(y)), mode="edge").reshape(m, k)
    t = (np.arange(m) * k + k / 2) / sr
    return {"t": np.round(t, 4).tolist(), "min": np.round(padded.min(axis=1), 4).tolist(),
            "max": np.round(padded.max(axis=1), 4).tolist()}


def timeline_report(
    audio: AudioSource | np.ndarray,
    model: str | Recognizer = "mlp",
    *,
    sr: int | None = None,
    registry: ModelRegistry | None = None,
    envelope_points: int = ENVELOPE_POINTS,
    method: str = "auto",
    aggressiveness: int = AGGRESSIVENESS,
    min_segment_s: float = MIN_SEGMENT_S,
    max_segment_s: float = MAX_SEGMENT_S,
    merge_gap_s: float = MERGE_GAP_S,
    pad_s: float = PAD_S,
    threshold: float | None = None,
    max_duration: float | None = None,
    speaker: SpeakerProfile | None = None,
    adapt: str = "auto",
) -> dict:
    """Everything the app and the ``/timeline`` API return for a recording, JSON-friendly.

    Parameters
    ----------
    audio : path, bytes, (sample_rate, samples), or np.ndarray
        A file or Gradio value (loaded by :func:`load_long`), or an already loaded mono array
        (then ``sr`` is required).
    model : str or Recognizer
        ``"mlp"``, ``"cnn"``, ``"ensemble"`` (from ``registry`` when given), a folder, or a model.
    envelope_points : int
        Resolution of the waveform envelope returned for drawing (0: none).
    speaker, adapt
        Speaker adaptation (:func:`adapted_timeline`); ``adapt="auto"`` self-adapts from
        :data:`SELF_ADAPT_FROM` segments on.

    Returns
    -------
    dict
        ``model``, ``version``, ``labels``, ``duration_s``, ``vad`` (the settings used),
        ``segments`` (:func:`timeline`), ``summary`` (:func:`summarize`), ``threshold``,
        ``compute_s`` (seconds spent, loading included), ``speed`` (seconds of audio per second
        of compute), ``envelope`` (:func:`envelope`), ``adaptation`` (:func:`adapted_timeline`'s).
    """
    if audio is None:
        raise AudioError("No audio: record or upload a recording first.")
    t0 = time.perf_counter()
    rec = get_recognizer(model, registry=registry)
    rec_sr = int(rec.audio["sr"])
    if isinstance(audio, np.ndarray):
        if sr is None:
            raise AudioError("A bare array has no sample rate: pass sr=... or (sample_rate, samples).")
        audio = (int(sr), audio)  # validated and resampled as a file would be
    y = load_long(audio, sr=rec_sr, max_duration=max_duration)
    threshold = settings.uncertain_below() if threshold is None else float(threshold)
    method = default_method() if method == "auto" else method
    vad = {"method": method, "aggressiveness": aggressiveness, "min_segment_s": min_segment_s,
           "max_segment_s": max_segment_s, "merge_gap_s": merge_gap_s, "pad_s": pad_s}
    segments, adaptation = adapted_timeline(y, rec, sr=rec_sr, threshold=threshold, speaker=speaker, adapt=adapt,
                                            **vad)
    elapsed = time.perf_counter() - t0
    duration = len(y) / rec_sr
    return {
        "model": rec.kind, "version": str(rec.metadata.get("version", "")), "labels": list(rec.labels),
        "duration_s": round(duration, 3), "vad": vad, "threshold": threshold, "segments": segments,
        "summary": summarize(segments, rec.labels), "compute_s": round(elapsed, 3),
        "speed": round(duration / elapsed, 1) if elapsed > 0 else None,
        "envelope": envelope(y, sr=rec_sr, points=envelope_points) if envelope_points else None,
        "adaptation": adaptation,
    }


# -- export ------------------------------------------------------------------------------------
def _segments_of(result: dict | Sequence[dict]) -> list[dict]:
    return list(result["segments"]) if isinstance(result, dict) else list(result)


def to_csv(result: dict | Sequence[dict], path: str | os.PathLike | None = None) -> str:
    """CSV of the segments: ``start,end,emotion,confidence,uncertain,p_<label>...``.

    ``result`` is a :func:`timeline_report` or the list of :func:`timeline`; also written to
    ``path`` when given.
    """
    segments = _segments_of(result)
    labels = (list(result["labels"]) if isinstance(result, dict)
              else list(segments[0]["probabilities"]) if segments else [])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["start", "end", "emotion", "confidence", "uncertain", *(f"p_{lab}" for lab in labels)])
    for s in segments:
        writer.writerow([f"{s['start']:.3f}", f"{s['end']:.3f}", s["emotion"], f"{s['confidence']:.6f}",
                         s["uncertain"], *(f"{s['probabilities'][lab]:.6f}" for lab in labels)])
    text = buf.getvalue()
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def to_json(result: dict | Sequence[dict], path: str | os.PathLike | None = None, *,
            envelope: bool = False) -> str:
    """JSON of a :func:`timeline_report` (without the drawing envelope unless asked) or of segments."""
    if isinstance(result, dict):
        data: Any = {k: v for k, v in result.items() if envelope or k != "envelope"}
    else:
        data = list(result)
    text = json.dumps(data, indent=1, ensure_ascii=False)
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


def export_files(result: dict, folder: str | os.PathLike | None = None, *,
                 stem: str = "timeline") -> tuple[Path, Path]:
    """Write ``<stem>.csv`` and ``<stem>.json`` into ``folder`` (a new temporary folder by default).

    Returns
    -------
    (csv_path, json_path)
        For ``gr.File`` / ``gr.DownloadButton``.
    """
    folder = Path(tempfile.mkdtemp(prefix="ser-timeline-") if folder is None else folder)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = folder / f"{stem}.csv", folder / f"{stem}.json"
    to_csv(result, csv_path)
    to_json(result, json_path)
    return csv_path, json_path


def figure(result: dict, *, title: str | None = None) -> go.Figure:
    """:func:`ser.plots.emotion_timeline_figure` of a :func:`timeline_report`."""
    segs = result["segments"]
    env = result.get("envelope") or {}
    if title is None:
        dom = result["summary"]["dominant"]
        title = (f"Emotion over time: {len(segs)} voiced segments in {result['duration_s']:.0f} s"
                 + (f", mostly {dom}" if dom else ""))
    return emotion_timeline_figure(
        [s["start"] for s in segs], [s["end"] for s in segs], [s["emotion"] for s in segs],
        [s["confidence"] for s in segs], labels=result["labels"], duration_s=result["duration_s"],
        envelope_t=env.get("t"), envelope_min=env.get("min"), envelope_max=env.get("max"), title=title)


# -- live --------------------------------------------------------------------------------------
@dataclass
class StreamState:
    """A live session: the last ``window_s`` seconds of audio and the recent windows' probabilities.

    Parameters
    ----------
    window_s : float
        Audio predicted at each update (about one RAVDESS sentence).
    every_s : float
        Seconds of new audio between two predictions.
    n_smooth : int
        The emotion shown is the mean probability of the last ``n_smooth`` voiced windows.
    max_trace : int
        Updates kept in ``trace`` (time, emotion, confidence) for a live chart.
    """

    window_s: float = 3.0
    every_s: float = 1.0
    n_smooth: int = 3
    max_trace: int = 600
    sr: int = SAMPLE_RATE
    buffer: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    received_s: float = 0.0
    pending_s: float = 0.0
    history: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    trace: list = field(default_factory=list)
    last: dict | None = None

    def __post_init__(self):
        if not (self.window_s > 0 and self.every_s > 0 and self.n_smooth >= 1):
            raise ValueError(f"window_s and every_s must be > 0 and n_smooth >= 1, got {self.window_s}, "
                             f"{self.every_s}, {self.n_smooth}.")

    def fresh(self) -> "StreamState":
        """A new empty session with the same settings."""
        return StreamState(window_s=self.window_s, every_s=self.every_s, n_smooth=self.n_smooth,
                           max_trace=self.max_trace, sr=self.sr)


def _chunk_samples(chunk, sr: int) -> np.ndarray:
    """A microphone chunk ``(rate, samples)`` (int PCM or float, mono or channels) at ``sr``."""
    if not isinstance(chunk, tuple):
        raise AudioError("A live chunk must be (sample_rate, samples), as gr.Audio(type='numpy') gives.")
    y, rate = decode(chunk)
    y = to_mono(y)
    if y.size and not np.isfinite(y).all():
        raise AudioError("The microphone sent NaN or infinite samples.")
    return resample(y.astype(np.float32, copy=False), orig_sr=int(rate), sr=sr)


def _result(state: StreamState, status: str, raw: np.ndarray | None, threshold: float) -> dict:
    labels = state.labels
    out = {"status": status, "time_s": round(state.received_s, 2), "emotion": None, "confidence": None,
           "uncertain": None, "probabilities": None, "window": None, "windows": len(state.history),
           "adapted": False}
    if state.history:
        mean = np.mean(state.history, axis=0)
        best = int(mean.argmax())
        out.update(emotion=labels[best], confidence=round(float(mean[best]), 4),
                   uncertain=bool(mean[best] < threshold),
                   probabilities={lab: round(float(v), 4) for lab, v in zip(labels, mean)})
    if raw is not None:
        out["window"] = {lab: round(float(v), 4) for lab, v in zip(labels, raw)}
    return out


def stream_update(state: StreamState | None, chunk, *, recognizer: Recognizer,
                  threshold: float | None = None,
                  speaker: SpeakerProfile | None = None) -> tuple[StreamState, dict]:
    """Add a microphone chunk; predict when ``every_s`` of new audio has arrived.

    Parameters
    ----------
    state : StreamState or None
        The session (``None``: a new one with default settings).
    chunk : (sample_rate, samples) or None
        The newest audio (``gr.Audio(streaming=True, type="numpy")`` gives int16 at the
        browser's rate); ``None`` changes nothing.
    recognizer : Recognizer
        The model; the window is trimmed of silence and predicted as a clip.
    speaker : SpeakerProfile, optional
        Predict each window adapted to this speaker (a model that cannot adapt raises ``ModelError``).

    Returns
    -------
    state : StreamState
        The same object, updated (return it to ``gr.State``).
    result : dict
        ``status`` (``"listening"`` before the first window, ``"speech"``, ``"silence"``),
        ``time_s`` (audio received), ``emotion``, ``confidence``, ``uncertain`` and
        ``probabilities`` (smoothed over the last ``n_smooth`` voiced windows; ``None`` before
        any), ``window`` (this window's own probabilities when one was predicted now),
        ``windows`` (how many are averaged), ``adapted`` (the last window was predicted with ``speaker``).
    """
    state = StreamState() if state is None else state
    threshold = settings.uncertain_below() if threshold is None else float(threshold)
    sr = int(recognizer.audio["sr"])
    if state.sr != sr:  # first use with this model's rate
        state.sr, state.buffer = sr, np.zeros(0, np.float32)
    state.labels = list(recognizer.labels)
    if chunk is None:
        return state, state.last or _result(state, "listening", None, threshold)
    y = _chunk_samples(chunk, sr)
    keep = round(state.window_s * sr)
    state.buffer = np.concatenate([state.buffer, y])[-keep:]
    state.received_s += len(y) / sr
    state.pending_s += len(y) / sr
    if state.pending_s + 1e-9 < state.every_s:
        return state, state.last or _result(state, "listening", None, threshold)
    state.pending_s = 0.0
    window = remove_dc(state.buffer)  # a clip of its own, prepared as the loader prepares one
    need = math.ceil(float(recognizer.audio["min_voiced_s"]) * sr)
    voiced = None
    if len(window) and float(np.max(np.abs(window - window.mean()))) >= 10 ** (-70 / 20):
        trimmed = trim_silence(window, top_db=float(recognizer.audio["top_db"]))
        if len(trimmed) >= need:
            voiced = trimmed
    raw = None
    if voiced is None:
        status = "silence"
    else:
        status = "speech"
        raw = recognizer.predict_proba(voiced, speaker=speaker)
        state.history = (state.history + [raw])[-state.n_smooth:]
    result = _result(state, status, raw, threshold)
    result["adapted"] = speaker is not None
    state.trace = (state.trace + [(result["time_s"], result["emotion"], result["confidence"], status)])[-state.max_trace:]
    state.last = result
    return state, result


def stream_stop(state: StreamState | None) -> tuple[StreamState, dict]:
    """End a live session: a summary of it, and a fresh state for the next one.

    Returns
    -------
    state : StreamState
        Empty, same settings.
    summary : dict
        ``duration_s`` (audio received), ``updates``, ``voiced_updates``, ``emotions``
        {label: updates where it was shown}, ``last`` (the last result or ``None``).
    """
    if state is None:
        state = StreamState()
    counts: dict[str, int] = {}
    for _, emotion, _, status in state.trace:
        if status == "speech" and emotion:
            counts[emotion] = counts.get(emotion, 0) + 1
    summary = {"duration_s": round(state.received_s, 2), "updates": len(state.trace),
               "voiced_updates": sum(counts.values()), "emotions": counts, "last": state.last}
    return state.fresh(), summary
