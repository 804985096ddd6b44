"""Audio in: the only place ``ser`` decodes, resamples, downmixes, trims and validates audio.

Everything downstream (features, spectrograms, signal maths) receives float32 mono at
:data:`SAMPLE_RATE` that has already passed :func:`valid_audio`, so it never re-checks.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Union

import numpy as np

from .errors import AudioError

__all__ = [
    "SAMPLE_RATE",
    "MIN_VOICED_S",
    "TOP_DB",
    "AudioSource",
    "load_audio",
    "decode",
    "to_mono",
    "resample",
    "trim_silence",
    "valid_audio",
    "max_duration_s",
    "max_bytes",
    "ACCEPTED",
]

SAMPLE_RATE = 16_000  # Hz; every model in ser sees 16 kHz mono
MIN_VOICED_S = 0.5  # shortest usable voice after trimming, in seconds
TOP_DB = 30.0  # trim: frames quieter than peak - TOP_DB dB are silence (librosa.effects.trim)
SILENCE_PEAK = 10 ** (-70 / 20)  # a signal whose peak is below -70 dBFS carries no voice
MIN_SR, MAX_SR = 8_000, 192_000
DEFAULT_MAX_DURATION_S = 600.0  # 10 minutes
DEFAULT_MAX_BYTES = 100 * 1024 * 1024  # 100 MiB
FFMPEG_TIMEOUT_S = 120
ACCEPTED = (
    "WAV, FLAC, OGG/Vorbis, AIFF, MP3, OGG/Opus, WebM/Opus or M4A/AAC audio, "
    f"{MIN_SR // 1000}-{MAX_SR // 1000} kHz, mono or multichannel"
)

AudioSource = Union[str, os.PathLike, bytes, bytearray, "tuple[int, np.ndarray]"]


def max_duration_s() -> float:
    """Longest accepted recording in seconds (setting ``SER_MAX_DURATION_S``, default 600)."""
    return float(os.environ.get("SER_MAX_DURATION_S", DEFAULT_MAX_DURATION_S))


def max_bytes() -> int:
    """Largest accepted file in bytes (setting ``SER_MAX_BYTES``, default 100 MiB)."""
    return int(os.environ.get("SER_MAX_BYTES", DEFAULT_MAX_BYTES))


def load_audio(
    source: AudioSource,
    *,
    sr: int = SAMPLE_RATE,
    trim: bool = True,
    top_db: float = TOP_DB,
    min_voiced_s: float = MIN_VOICED_S,
    max_duration: float | None = None,
    max_size: int | None = None,
) -> np.ndarray:
    """Load any supported audio as float32 mono at ``sr``, silence trimmed and validated.

    Parameters
    ----------
    source : path, bytes, or (sample_rate, np.ndarray)
        A file path, the raw bytes of a file, or the ``(sample_rate, samples)`` pair Gradio hands
        over (samples of shape ``(n,)`` or ``(n, channels)``; any integer or float dtype).
    sr : int
        Target sample rate in Hz.
    trim : bool
        Remove leading and trailing silence (:func:`trim_silence`), as done at training time.
    top_db : float
        Trimming threshold below the peak, in dB.
    min_voiced_s : float
        Minimum duration left after trimming, in seconds.
    max_duration : float, optional
        Longest accepted input in seconds; default :func:`max_duration_s`.
    max_size : int, optional
        Largest accepted file in bytes; default :func:`max_bytes`.

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]

    Raises
    ------
    AudioError
        For anything that is not usable audio; the message says what is wrong and what is accepted.
    """
    max_duration = max_duration_s() if max_duration is None else max_duration
    max_size = max_bytes() if max_size is None else max_size
    y, orig_sr = decode(source, max_duration=max_duration, max_size=max_size)
    y = valid_audio(to_mono(y), sr=orig_sr, max_duration=max_duration)
    y = resample(y, orig_sr=orig_sr, sr=sr)
    if trim:
        y = trim_silence(y, top_db=top_db)
    if len(y) < min_voiced_s * sr:
        raise AudioError(
            f"Too short: {len(y) / sr:.2f} s of voice after trimming silence; "
            f"at least {min_voiced_s:g} s of speech is needed."
        )
    return np.ascontiguousarray(y, dtype=np.float32)


def decode(
    source: AudioSource, *, max_duration: float | None = None, max_size: int | None = None
) -> tuple[np.ndarray, int]:
    """Decode ``source`` to ``(samples, sample_rate)`` without resampling.

    Samples are float (``[-1, 1]`` for integer input), shape ``(n,)`` or ``(n, channels)``.
    WAV/FLAC/OGG/AIFF/MP3 go through libsndfile; anything it cannot read (WebM, M4A, Opus in
    some containers) through ffmpeg. Decoder errors never escape: they become :class:`AudioError`.
    """
    max_duration = max_duration_s() if max_duration is None else max_duration
    max_size = max_bytes() if max_size is None else max_size
    if isinstance(source, tuple):
        if len(source) != 2:
            raise AudioError(f"Expected a (sample_rate, samples) pair, got a tuple of {len(source)}.")
        rate, data = source
        try:
            rate = int(rate)
        except (TypeError, ValueError):
            raise AudioError(f"Sample rate must be a number, got {rate!r}.") from None
        return _as_float(np.asarray(data)), rate
    if isinstance(source, np.ndarray):
        raise AudioError("A bare array has no sample rate: pass (sample_rate, samples).")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        _check_size(len(data), max_size)
        return _decode_bytes(data, max_duration=max_duration)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise AudioError(f"No such audio file: {path}")
        _check_size(path.stat().st_size, max_size)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise AudioError(f"Cannot read {path.name}: {e.strerror or e}") from None
        return _decode_bytes(data, max_duration=max_duration, name=path.name)
    raise AudioError(
        f"Unsupported audio source of type {type(source).__name__}: "
        "pass a file path, the file's bytes, or (sample_rate, samples)."
    )


def _check_size(n: int, limit: int) -> None:
    if n == 0:
        raise AudioError(f"The file is empty (0 bytes); expected {ACCEPTED}.")
    if n > limit:
        raise AudioError(
            f"File too large: {n / 2**20:.1f} MiB; the limit is {limit / 2**20:.0f} MiB."
        )


def _decode_bytes(
    data: bytes, *, max_duration: float, name: str = "the input"
) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            if f.frames > 0 and f.samplerate > 0:
                _check_duration(f.frames / f.samplerate, max_duration)
            y = f.read(dtype="float32", always_2d=False)
            rate = f.samplerate
    except AudioError:
        raise
    except Exception:  # libsndfile could not parse it: try ffmpeg, which knows far more containers
        y, rate = _decode_ffmpeg(data, max_duration=max_duration, name=name)
    if y.size == 0:
        raise AudioError(f"{name} holds no audio samples (an empty recording); expected {ACCEPTED}.")
    return y, int(rate)


def _decode_ffmpeg(data: bytes, *, max_duration: float, name: str) -> tuple[np.ndarray, int]:
    """Decode with ffmpeg to 32-bit float at the stream's own rate and channel count."""
    ffmpeg = shutil.which("ffmpeg")
    not_audio = f"{name} is not audio ffmpeg or libsndfile can decode (corrupt or unsupported); expected {ACCEPTED}."
    if ffmpeg is None:
        raise AudioError(f"{name} is not WAV/FLAC/OGG/MP3 and ffmpeg is not installed to decode it.")
    probe = _ffprobe(data)
    if probe is None:
        raise AudioError(not_audio)
    rate, channels = probe
    if not (MIN_SR <= rate <= MAX_SR):
        raise AudioError(f"Unsupported sample rate {rate} Hz; accepted {MIN_SR}-{MAX_SR} Hz.")
    with tempfile.NamedTemporaryFile(suffix=".bin") as tmp:
        tmp.write(data)
        tmp.flush()
        cmd = [ffmpeg, "-nostdin", "-v", "error", "-i", tmp.name, "-t", f"{max_duration + 1:.3f}",
               "-vn", "-f", "f32le", "-acodec", "pcm_f32le", "-"]
        try:
            out = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise AudioError(f"Decoding {name} took longer than {FFMPEG_TIMEOUT_S} s; giving up.") from None
    if out.returncode != 0 and not out.stdout:
        raise AudioError(not_audio)
    y = np.frombuffer(out.stdout, dtype="<f4")
    y = y[: len(y) - len(y) % channels].reshape(-1, channels)
    if channels == 1:
        y = y[:, 0]
    if len(y) == 0:
        raise AudioError(f"{name} holds no audio samples (an empty recording); expected {ACCEPTED}.")
    _check_duration(len(y) / rate, max_duration)
    return y.copy(), rate


def _ffprobe(data: bytes) -> tuple[int, int] | None:
    """(sample_rate, channels) of the first audio stream, or None if there is none."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return None
    with tempfile.NamedTemporaryFile(suffix=".bin") as tmp:
        tmp.write(data)
        tmp.flush()
        cmd = [ffprobe, "-v", "error", "-select_streams", "a:0", "-show_entries",
               "stream=sample_rate,channels", "-of", "csv=p=0", tmp.name]
        try:
            out = subprocess.run(cmd, capture_output=True, timeout=30, check=False, text=True)
        except subprocess.TimeoutExpired:
            return None
    fields = out.stdout.strip().split("\n")[0].split(",") if out.returncode == 0 else []
    try:
        return int(fields[0]), int(fields[1])
    except (IndexError, ValueError):
        return None


def _check_duration(seconds: float, limit: float) -> None:
    if seconds > limit:
        raise AudioError(
            f"Recording too long: {seconds / 60:.1f} min; the limit is {limit / 60:.0f} min "
            "(setting SER_MAX_DURATION_S)."
        )


def _as_float(data: np.ndarray) -> np.ndarray:
    """Integer PCM to float in [-1, 1]; float passes through."""
    if data.dtype.kind == "f":
        return data.astype(np.float32, copy=False)
    if data.dtype.kind == "i":
        return data.astype(np.float32) / float(2 ** (8 * data.dtype.itemsize - 1))
    if data.dtype.kind == "u":  # 8-bit WAV is unsigned, centred on 128
        half = float(2 ** (8 * data.dtype.itemsize - 1))
        return (data.astype(np.float32) - half) / half
    if data.dtype.kind == "b":
        return data.astype(np.float32)
    raise AudioError(f"Samples must be numbers, got dtype {data.dtype}.")


def to_mono(y: np.ndarray) -> np.ndarray:
    """Downmix ``(n, channels)`` to ``(n,)`` by averaging channels.

    Gradio and soundfile put channels last; a ``(channels, n)`` array with few rows and many
    columns is also recognised (librosa's convention).
    """
    y = np.asarray(y)
    if y.ndim == 1:
        return y
    if y.ndim != 2 or 0 in y.shape:
        raise AudioError(f"Audio must be 1-D (mono) or 2-D (samples, channels); got shape {y.shape}.")
    if y.shape[0] <= 8 and y.shape[1] > y.shape[0]:
        y = y.T
    return y.mean(axis=1)


def valid_audio(y: np.ndarray, *, sr: int, max_duration: float | None = None) -> np.ndarray:
    """Check a decoded mono signal; return it as float32 with any DC offset removed.

    Raises :class:`AudioError` for a bad rate, no samples, NaN/inf, too long, or silence.
    """
    max_duration = max_duration_s() if max_duration is None else max_duration
    if not (MIN_SR <= sr <= MAX_SR):
        raise AudioError(f"Unsupported sample rate {sr} Hz; accepted {MIN_SR}-{MAX_SR} Hz.")
    y = _as_float(np.asarray(y))
    if y.ndim != 1:
        raise AudioError(f"Audio must be mono after downmixing; got shape {y.shape}.")
    if y.size == 0:
        raise AudioError(f"The audio holds no samples (an empty recording); expected {ACCEPTED}.")
    _check_duration(len(y) / sr, max_duration)
    if not np.all(np.isfinite(y)):
        bad = int(np.count_nonzero(~np.isfinite(y)))
        raise AudioError(f"The audio has {bad} NaN or infinite samples; expected finite PCM samples.")
    y = y - np.float32(y.mean())  # a DC offset is not voice; it would fool the silence check
    if len(y) == 0 or float(np.max(np.abs(y))) < SILENCE_PEAK:
        raise AudioError(
            f"The recording is silent (peak below {20 * np.log10(SILENCE_PEAK):.0f} dBFS); "
            "record again closer to the microphone."
        )
    return y.astype(np.float32, copy=False)


def resample(y: np.ndarray, *, orig_sr: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling with soxr (high quality)."""
    if orig_sr == sr:
        return y
    import soxr

    return soxr.resample(y, orig_sr, sr, quality="HQ").astype(np.float32, copy=False)


def trim_silence(y: np.ndarray, *, top_db: float = TOP_DB) -> np.ndarray:
    """Drop leading and trailing frames quieter than ``peak - top_db`` dB (librosa.effects.trim).

    The same call runs at training and at prediction, so both see the same kind of clip.
    """
    import librosa

    trimmed, _ = librosa.effects.trim(y, top_db=top_db, frame_length=512, hop_length=128)
    return trimmed
