"""Audio in: the only place ``ser`` decodes, resamples, downmixes, trims and validates audio.

Everything downstream (features, spectrograms, signal maths) receives float32 mono at
:data:`SAMPLE_RATE` that has already passed :func:`valid_audio`, so it never re-checks.

Pipeline of :func:`load_audio`::

    decode (libsndfile, else one ffmpeg call)  ->  to_mono (mean of channels)
    -> valid_audio (rate, empty, length, NaN/inf, range, DC, silence)
    -> resample (soxr HQ to 16 kHz)  ->  trim_silence (librosa)  ->  >= MIN_VOICED_S left

Every failure, including any decoder error, becomes one :class:`~ser.errors.AudioError` whose
message says what is wrong and what is accepted.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import logging
import math
import numbers
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import BinaryIO, Union

import librosa
import numpy as np
import soundfile as sf
import soxr

from .. import settings
from ..errors import AudioError

__all__ = [
    "SAMPLE_RATE",
    "MIN_VOICED_S",
    "TOP_DB",
    "TRIM_FRAME_LENGTH",
    "TRIM_HOP_LENGTH",
    "MIN_SR",
    "MAX_SR",
    "AudioSource",
    "load_audio",
    "decode",
    "to_mono",
    "resample",
    "trim_silence",
    "valid_audio",
    "as_signal",
    "sha256_file",
    "ACCEPTED",
]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # Hz; every model in ser sees 16 kHz mono
MIN_VOICED_S = 0.5  # shortest usable voice after trimming, in seconds (8000 samples at 16 kHz)
TOP_DB = 30.0  # trim: frames quieter than peak - TOP_DB dB are silence (librosa.effects.trim)
TRIM_FRAME_LENGTH = 512  # samples; 32 ms at 16 kHz, about three pitch periods of a low voice
TRIM_HOP_LENGTH = 128  # samples; 8 ms at 16 kHz, the precision of the cut
SILENCE_DBFS = -70.0  # a signal whose peak (DC removed) is below this carries no voice
SILENCE_PEAK = 10 ** (SILENCE_DBFS / 20)  # ≈ 3.2e-4 full scale, about 10 LSB of 16-bit PCM
MAX_FLOAT_PEAK = 100.0  # +40 dBFS: float audio is nominally within [-1, 1]; real overs are a
# few dB, while samples in the thousands are integer PCM stored as float without scaling
MIN_SR, MAX_SR = 8_000, 192_000  # Hz; telephone to studio rates
DURATION_MARGIN_S = 1.0  # ffmpeg decodes at most the limit plus this, enough to tell "too long"
FFMPEG_TIMEOUT_S = 60.0  # 10 min of Opus/AAC/MP3 decode in about 2 s on one core here
ACCEPTED = (
    "WAV, FLAC, OGG/Vorbis, AIFF, MP3, OGG/Opus, WebM/Opus or M4A/AAC audio, "
    f"{MIN_SR // 1000}-{MAX_SR // 1000} kHz, mono or multichannel"
)

# File signatures of things people upload by mistake, for a clearer message (never for audio).
_NOT_AUDIO_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
)
_SNIFF_BYTES = 512

AudioSource = Union[str, os.PathLike, bytes, bytearray, memoryview, "tuple[int, np.ndarray]"]


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (identical recordings share it, whatever their
    names; model folders list it for every file)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
        over (samples of shape ``(n,)`` or ``(n, channels)``; any integer or float dtype, integer
        PCM scaled by its full scale, float taken as is).
    sr : int
        Target sample rate in Hz.
    trim : bool
        Remove leading and trailing silence (:func:`trim_silence`), as done at training time.
    top_db : float
        Trimming threshold below the peak, in dB.
    min_voiced_s : float
        Minimum duration left after trimming, in seconds.
    max_duration : float, optional
        Longest accepted input in seconds; default :func:`ser.settings.max_duration_s`.
    max_size : int, optional
        Largest accepted file in bytes (paths and bytes); default :func:`ser.settings.max_bytes`.

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
        Finite, DC-free, ``n >= min_voiced_s * sr``.

    Raises
    ------
    AudioError
        For anything that is not usable audio; the message says what is wrong and what is accepted.
    """
    max_duration = settings.max_duration_s() if max_duration is None else float(max_duration)
    max_size = settings.max_bytes() if max_size is None else int(max_size)
    y, orig_sr = decode(source, max_duration=max_duration, max_size=max_size)
    y = valid_audio(to_mono(y), sr=orig_sr, max_duration=max_duration)
    y = resample(y, orig_sr=orig_sr, sr=sr)
    min_samples = math.ceil(min_voiced_s * sr)
    if trim and len(y):
        y = trim_silence(y, top_db=top_db)
    if len(y) < min_samples:
        what = "of voice after trimming silence" if trim else "of audio"
        raise AudioError(
            f"Too short: {len(y) / sr:.2f} s {what}; at least {min_voiced_s:g} s of speech "
            "is needed."
        )
    return np.ascontiguousarray(y, dtype=np.float32)


def decode(
    source: AudioSource, *, max_duration: float | None = None, max_size: int | None = None
) -> tuple[np.ndarray, int]:
    """Decode ``source`` to ``(samples, sample_rate)`` without resampling.

    Parameters
    ----------
    source : path, bytes, or (sample_rate, np.ndarray)
        See :func:`load_audio`.
    max_duration : float, optional
        Refuse (from the header where there is one) anything longer, in seconds.
    max_size : int, optional
        Refuse files larger than this many bytes.

    Returns
    -------
    y : np.ndarray [shape=(n,) or (n, channels), dtype=float32]
        Integer PCM scaled to ``[-1, 1]``; float as stored.
    sample_rate : int

    Notes
    -----
    Files go through libsndfile (WAV, FLAC, OGG/Vorbis/Opus, AIFF, MP3, ...); whatever it cannot
    read (WebM, M4A, video containers) through one ffmpeg call that outputs 32-bit float WAV at
    the stream's own rate and channel count, so resampling and downmixing stay the same for every
    format. Decoder errors never escape: they become :class:`AudioError`.
    """
    max_duration = settings.max_duration_s() if max_duration is None else float(max_duration)
    max_size = settings.max_bytes() if max_size is None else int(max_size)
    if isinstance(source, tuple):
        return _decode_pair(source)
    if isinstance(source, np.ndarray):
        raise AudioError("A bare array has no sample rate: pass (sample_rate, samples).")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        _check_size(len(data), max_size)
        return _decode_file(io.BytesIO(data), name="The input", max_duration=max_duration)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            what = "is a folder, not an audio file" if path.is_dir() else "does not exist"
            raise AudioError(f"{path} {what}; expected a file of {ACCEPTED}.")
        try:
            _check_size(path.stat().st_size, max_size)
            with path.open("rb") as f:
                return _decode_file(f, name=path.name, max_duration=max_duration, path=path)
        except OSError as e:
            raise AudioError(f"Cannot read {path.name}: {e.strerror or e}.") from None
    raise AudioError(
        f"Unsupported audio source of type {type(source).__name__}: "
        "pass a file path, the file's bytes, or (sample_rate, samples)."
    )


def _decode_pair(source: tuple) -> tuple[np.ndarray, int]:
    """The ``(sample_rate, samples)`` pair Gradio's ``type="numpy"`` gives."""
    if len(source) != 2:
        raise AudioError(f"Expected a (sample_rate, samples) pair, got a tuple of {len(source)}.")
    rate, data = source
    if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, numbers.Real):
        raise AudioError(
            f"Expected (sample_rate, samples) with the rate a number of Hz first, got "
            f"({type(rate).__name__}, {type(data).__name__})."
        )
    if not math.isfinite(rate) or rate != int(rate):
        raise AudioError(f"Sample rate must be a whole number of Hz, got {rate!r}.")
    try:
        samples = np.asarray(data)
    except (TypeError, ValueError) as e:
        raise AudioError(
            f"Samples must be a numeric array of shape (n,) or (n, channels): {e}"
        ) from None
    return _as_float(samples), int(rate)


def _check_size(n: int, limit: int) -> None:
    if n == 0:
        raise AudioError(f"The file is empty (0 bytes); expected {ACCEPTED}.")
    if n > limit:
        raise AudioError(
            f"The file is too large: {_fmt_bytes(n)}; the limit is {_fmt_bytes(limit)} "
            "(setting SER_MAX_BYTES)."
        )


def _decode_file(
    f: BinaryIO, *, name: str, max_duration: float, path: Path | None = None
) -> tuple[np.ndarray, int]:
    """libsndfile on an open binary file (never by name: it would guess MP3 from ``.mp3``)."""
    try:
        with sf.SoundFile(f) as snd:
            rate, frames = int(snd.samplerate), int(snd.frames)
            _check_rate(rate)
            if frames > 0:
                _check_duration(frames / rate, max_duration)
            y = snd.read(dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception as e:  # libsndfile could not parse it: ffmpeg knows far more containers
        logger.debug("libsndfile could not read %s (%s); trying ffmpeg", name, e)
        y = None
    if y is None:  # outside the except block, so no decoder traceback is chained to the error
        f.seek(0)
        kind = _not_audio_kind(f.read(_SNIFF_BYTES))
        if kind is not None:
            raise AudioError(f"{name} is {kind}, not audio; expected {ACCEPTED}.")
        if path is not None:
            y, rate = _decode_ffmpeg(path, name=name, max_duration=max_duration)
        else:
            f.seek(0)
            with tempfile.NamedTemporaryFile(prefix="ser-audio-", suffix=".bin") as tmp:
                shutil.copyfileobj(f, tmp)
                tmp.flush()
                y, rate = _decode_ffmpeg(Path(tmp.name), name=name, max_duration=max_duration)
    if y.size == 0:
        raise AudioError(
            f"{name} holds no audio samples (an empty recording); expected {ACCEPTED}."
        )
    return y, rate


def _not_audio_kind(head: bytes) -> str | None:
    """Name a common non-audio file type from its first bytes, or None."""
    for magic, kind in _NOT_AUDIO_MAGIC:
        if head.startswith(magic):
            return kind
    try:  # incremental: the head may end inside a multi-byte character
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    if text and all(c.isprintable() or c in "\t\r\n" for c in text):
        return "a text file"
    return None


def _decode_ffmpeg(path: Path, *, name: str, max_duration: float) -> tuple[np.ndarray, int]:
    """One ffmpeg call: the first audio stream as 32-bit float WAV at its own rate and channels.

    No ffprobe: the WAV header ffmpeg writes carries the rate and channel count. Output is cut
    at ``max_duration + DURATION_MARGIN_S`` so a long file costs no more than the limit.
    """
    not_audio = (
        f"{name} is not audio that can be decoded (corrupt, truncated, or another kind of "
        f"file); expected {ACCEPTED}."
    )
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioError(
            f"{name} is not WAV/FLAC/OGG/AIFF/MP3, and decoding other formats (WebM, M4A) "
            "needs ffmpeg, which is not installed."
        )
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error",
           "-i", f"file:{path.resolve()}",
           "-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "-1"]
    if math.isfinite(max_duration):
        cmd += ["-t", f"{max_duration + DURATION_MARGIN_S:.3f}"]
    cmd += ["-c:a", "pcm_f32le", "-f", "wav", "pipe:1"]
    try:
        out = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=FFMPEG_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AudioError(
            f"Decoding {name} took longer than {FFMPEG_TIMEOUT_S:g} s; giving up. "
            f"Expected {ACCEPTED}."
        ) from None
    except OSError as e:
        raise AudioError(f"Could not run ffmpeg to decode {name}: {e.strerror or e}.") from None
    stderr = out.stderr.decode("utf-8", "replace").strip()
    try:
        y, rate = sf.read(io.BytesIO(out.stdout), dtype="float32", always_2d=True)
    except Exception:
        y = None
    if y is None:
        logger.debug("ffmpeg could not decode %s (exit %s): %s", name, out.returncode, stderr)
        raise AudioError(not_audio)
    if out.returncode != 0:  # a partly decoded (truncated) stream: keep what was decoded
        logger.debug("ffmpeg decoded %s partly (exit %s): %s", name, out.returncode, stderr)
    _check_rate(int(rate))
    seconds = len(y) / rate
    # output stops near the limit plus the margin (codec frames round it): the file may be longer
    _check_duration(seconds, max_duration, at_least=seconds > max_duration + DURATION_MARGIN_S / 2)
    return y, int(rate)


def _check_rate(rate: int) -> None:
    if not (MIN_SR <= rate <= MAX_SR):
        raise AudioError(
            f"Unsupported sample rate {rate} Hz; accepted {MIN_SR}-{MAX_SR} Hz "
            f"({MIN_SR // 1000}-{MAX_SR // 1000} kHz)."
        )


def _check_duration(seconds: float, limit: float, *, at_least: bool = False) -> None:
    if seconds > limit:
        raise AudioError(
            f"The recording is too long: {'at least ' if at_least else ''}{_fmt_seconds(seconds)}; "
            f"the limit is "
            f"{_fmt_seconds(limit)} (setting SER_MAX_DURATION_S). Send a shorter clip."
        )


def _fmt_seconds(s: float) -> str:
    return f"{s:.3g} s" if s < 120 else f"{s / 60:.3g} min"


def _fmt_bytes(n: int) -> str:
    if n < 2**10:
        return f"{n} bytes"
    if n < 2**20:
        return f"{n / 2**10:.1f} KiB"
    return f"{n / 2**20:.1f} MiB"


def _as_float(data: np.ndarray) -> np.ndarray:
    """Integer PCM to float32 in [-1, 1]; float passes through as float32."""
    kind = data.dtype.kind
    if kind == "f":
        with np.errstate(over="ignore", invalid="ignore"):
            out = data.astype(np.float32, copy=False)
        if data.dtype.itemsize > 4:  # beyond float32's range: keep finite, refused as out of range
            overflow = np.isinf(out) & np.isfinite(data)
            if overflow.any():
                out[overflow] = np.copysign(np.finfo(np.float32).max, data[overflow])
        return out
    if kind == "i":
        return (data / float(2 ** (8 * data.dtype.itemsize - 1))).astype(np.float32)
    if kind == "u":  # unsigned PCM (8-bit WAV) is centred on half the range
        half = float(2 ** (8 * data.dtype.itemsize - 1))
        return ((data - half) / half).astype(np.float32)
    if kind == "b":
        return data.astype(np.float32)
    raise AudioError(f"Samples must be integer or float numbers, got dtype {data.dtype}.")


def to_mono(y: np.ndarray) -> np.ndarray:
    """Downmix to one channel by averaging channels.

    Parameters
    ----------
    y : np.ndarray [shape=(n,) or (n, channels)]
        Channels last, as Gradio and soundfile give them; a ``(channels, n)`` array with at most
        8 rows and more columns (librosa's convention) is also recognised.

    Returns
    -------
    y_mono : np.ndarray [shape=(n,)]
    """
    y = np.asarray(y)
    if y.ndim == 1:
        return y
    if y.ndim != 2:
        raise AudioError(
            f"Audio must be 1-D (mono) or 2-D (samples, channels); got shape {y.shape}."
        )
    if y.size == 0:
        return np.zeros(0, dtype=np.float32)
    if y.shape[0] <= 8 and y.shape[1] > y.shape[0]:
        y = y.T
    if y.shape[1] == 1:
        return y[:, 0]
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN: refused as such later
        return y.mean(axis=1, dtype=np.float64).astype(np.float32)


def as_signal(y) -> np.ndarray:
    """A loaded signal checked for the feature code: float32, 1-D, finite, within ±``MAX_FLOAT_PEAK``.

    Features and spectrograms take what :func:`load_audio` returns; this is their guard against
    anything else (a 2-D array, strings, NaN/inf, unscaled values), so a caller gets one
    :class:`AudioError` saying what is wrong instead of an error from deep inside librosa.
    Values are cast, never rescaled. An empty signal passes (the feature code pads it).

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
    """
    try:
        a = np.asarray(y)
    except (TypeError, ValueError) as e:
        raise AudioError(f"Samples must be a numeric array of shape (n,): {e}") from None
    if a.dtype.kind not in "iufb":
        raise AudioError(f"Samples must be integer or float numbers, got dtype {a.dtype}; "
                         "load audio with ser.audio.load_audio.")
    if a.ndim != 1:
        raise AudioError(f"Expected one mono signal of shape (n,), got shape {a.shape}; "
                         "load audio with ser.audio.load_audio (it downmixes channels).")
    with np.errstate(over="ignore", invalid="ignore"):
        out = a.astype(np.float32, copy=False)
    if out.size:
        peak = float(np.max(np.abs(out)))
        if not math.isfinite(peak):
            bad = int(np.count_nonzero(~np.isfinite(out)))
            raise AudioError(f"The signal holds {bad} NaN or infinite samples (as float32) of {out.size}; "
                             "only finite samples can be analysed.")
        if peak > MAX_FLOAT_PEAK:
            raise AudioError(f"Samples out of range: peak {peak:.3g}; expected float audio within [-1, 1] "
                             f"(at most ±{MAX_FLOAT_PEAK:g}), as ser.audio.load_audio returns it.")
    return out


def valid_audio(y: np.ndarray, *, sr: int, max_duration: float | None = None) -> np.ndarray:
    """Check a decoded mono signal; return it as float32 with any DC offset removed.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Integer PCM or float samples.
    sr : int
        Its sample rate in Hz, within ``[MIN_SR, MAX_SR]``.
    max_duration : float, optional
        Longest accepted duration in seconds; default :func:`ser.settings.max_duration_s`.

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
        ``y - mean(y)``.

    Raises
    ------
    AudioError
        A bad rate, no samples, too long, NaN/inf, float samples far outside ``[-1, 1]``, or
        silence (peak below ``SILENCE_DBFS`` once the DC offset is removed).
    """
    max_duration = settings.max_duration_s() if max_duration is None else max_duration
    _check_rate(sr)
    y = _as_float(np.asarray(y))
    if y.ndim != 1:
        raise AudioError(f"Audio must be mono after downmixing; got shape {y.shape}.")
    if y.size == 0:
        raise AudioError(
            f"The input holds no audio samples (an empty recording); expected {ACCEPTED}."
        )
    _check_duration(len(y) / sr, max_duration)
    finite = np.isfinite(y)
    if not finite.all():
        bad = int(y.size - np.count_nonzero(finite))
        raise AudioError(
            f"The audio has {bad} NaN or infinite samples of {y.size}; expected finite PCM samples."
        )
    peak = float(np.max(np.abs(y)))
    if peak > MAX_FLOAT_PEAK:
        raise AudioError(
            f"Samples out of range: peak {peak:.3g}; float audio must lie within [-1, 1] "
            "(scale integer PCM by its full scale, e.g. int16 / 32768)."
        )
    # a DC offset is not voice, and it would fool the silence check
    y = y - np.float32(y.mean(dtype=np.float64))
    if float(np.max(np.abs(y))) < SILENCE_PEAK:
        raise AudioError(
            f"The recording is silent (peak below {SILENCE_DBFS:.0f} dBFS once any DC offset is "
            "removed); record again closer to the microphone."
        )
    return y.astype(np.float32, copy=False)


def resample(y: np.ndarray, *, orig_sr: int, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling with soxr (``HQ``: 20-bit precision, linear phase).

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    orig_sr, sr : int
        Source and target rates in Hz.

    Returns
    -------
    y_hat : np.ndarray [shape=(round(n * sr / orig_sr),), dtype=float32]
    """
    if orig_sr == sr:
        return y
    return soxr.resample(y, orig_sr, sr, quality="HQ").astype(np.float32, copy=False)


def trim_silence(y: np.ndarray, *, top_db: float = TOP_DB) -> np.ndarray:
    """Drop leading and trailing frames quieter than ``peak - top_db`` dB.

    ``librosa.effects.trim`` with frames of :data:`TRIM_FRAME_LENGTH` and hops of
    :data:`TRIM_HOP_LENGTH` samples. The same call runs at training and at prediction, so both
    see the same kind of clip.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    top_db : float

    Returns
    -------
    y_trimmed : np.ndarray [shape=(m,)], a view of ``y``, ``m <= n``
    """
    trimmed, _ = librosa.effects.trim(
        y, top_db=top_db, frame_length=TRIM_FRAME_LENGTH, hop_length=TRIM_HOP_LENGTH
    )
    return trimmed
