"""Audio in: the only place ``ser`` decodes, resamples, downmixes, trims and validates audio.

Everything downstream (features, spectrograms, signal maths) receives float32 mono at
:data:`SAMPLE_RATE` that has already passed :func:`valid_audio`, so it never re-checks.

Pipeline of :func:`load_audio`::

    header (rate, duration, channels x rate x duration <= SER_MAX_DECODED_MB)
    -> decode in blocks (libsndfile, else one ffmpeg call), per block: to_mono (mean of channels)
       -> statistics for valid_audio (NaN/inf, range, DC, silence) -> resample (soxr HQ to 16 kHz)
    -> valid_audio's checks, DC removed  ->  trim_silence (librosa)  ->  >= MIN_VOICED_S left

Memory holds the output and one block, never the whole decoded input.

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
    "remove_dc",
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
    max_decoded: int | None = None,
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
    max_decoded : int, optional
        Largest decoded input in bytes, channels × frames × 4 (float32), checked from the header
        before decoding; default :func:`ser.settings.max_decoded_bytes`.

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
        Finite, DC-free, ``n >= min_voiced_s * sr``.

    Raises
    ------
    AudioError
        For anything that is not usable audio; the message says what is wrong and what is accepted.

    Notes
    -----
    Decoding runs in blocks of :data:`BLOCK_FRAMES` frames; each block is downmixed and resampled
    before the next is read, so memory holds the output (mono at ``sr``) and one block, whatever
    the input's channels and rate. The checks of :func:`valid_audio` run on running statistics of
    the mono signal at its own rate (count of NaN/inf, minimum, maximum, sum), so they refuse
    exactly what :func:`valid_audio` refuses; the DC offset (that signal's mean) is subtracted
    from the output.
    """
    max_duration = settings.max_duration_s() if max_duration is None else float(max_duration)
    max_size = settings.max_bytes() if max_size is None else int(max_size)
    max_decoded = settings.max_decoded_bytes() if max_decoded is None else int(max_decoded)
    mono = _stream(source, lambda rate, channels, frames: _MonoSink(rate, sr, frames, max_decoded),
                   max_duration=max_duration, max_size=max_size, max_decoded=max_decoded)
    y = mono.finish(max_duration=max_duration)
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
    source: AudioSource, *, max_duration: float | None = None, max_size: int | None = None,
    max_decoded: int | None = None,
) -> tuple[np.ndarray, int]:
    """Decode ``source`` to ``(samples, sample_rate)`` without resampling or downmixing.

    Parameters
    ----------
    source : path, bytes, or (sample_rate, np.ndarray)
        See :func:`load_audio`.
    max_duration : float, optional
        Refuse (from the header where there is one) anything longer, in seconds.
    max_size : int, optional
        Refuse files larger than this many bytes.
    max_decoded : int, optional
        Refuse (from the header where there is one, else while decoding) anything whose samples
        would take more bytes as float32; default :func:`ser.settings.max_decoded_bytes`.

    Returns
    -------
    y : np.ndarray [shape=(n, channels), dtype=float32]
        Integer PCM scaled to ``[-1, 1]``; float as stored. (A ``(sample_rate, samples)`` pair
        comes back in its own shape.)
    sample_rate : int

    Notes
    -----
    Files go through libsndfile (WAV, FLAC, OGG/Vorbis/Opus, AIFF, MP3, ...); whatever it cannot
    read (WebM, M4A, video containers) through one ffmpeg call that writes 32-bit float WAV at
    the stream's own rate and channel count into a temporary file (at most ``max_decoded``
    bytes), read back the same way, so resampling and downmixing stay the same for every format.
    Decoder errors never escape: they become :class:`AudioError`. :func:`load_audio` does not
    hold the whole decoded input: it consumes the same blocks one at a time.
    """
    max_duration = settings.max_duration_s() if max_duration is None else float(max_duration)
    max_size = settings.max_bytes() if max_size is None else int(max_size)
    max_decoded = settings.max_decoded_bytes() if max_decoded is None else int(max_decoded)
    if isinstance(source, tuple):
        samples, rate = _decode_pair(source, max_decoded=max_decoded)
        return _as_float(samples), rate
    sink = _stream(source, lambda rate, channels, frames: _CollectSink(rate, channels, max_decoded),
                   max_duration=max_duration, max_size=max_size, max_decoded=max_decoded)
    return sink.samples(), sink.rate


# -- blocks: every source is read as float32 blocks of (frames, channels) into a sink ----------
#: Frames decoded at a time: 256 KiB of float32 per channel (2 MiB for 8 channels).
BLOCK_FRAMES = 1 << 16


class _Sink:
    """Receives the blocks of one decoded input; counts them against the decoded-size budget."""

    def __init__(self, rate: int, channels: int, max_decoded: int):
        self.rate, self.channels, self.max_decoded = int(rate), int(channels), int(max_decoded)
        self.frames = 0

    def add(self, block: np.ndarray) -> None:
        """``block`` [shape=(n, channels), dtype=float32]."""
        self.frames += len(block)
        _check_decoded(self.frames, self.channels, self.rate, self.max_decoded, at_least=True)


class _CollectSink(_Sink):
    """Keeps every block: the whole decoded input (:func:`decode`)."""

    def __init__(self, rate: int, channels: int, max_decoded: int):
        super().__init__(rate, channels, max_decoded)
        self.blocks: list[np.ndarray] = []

    def add(self, block: np.ndarray) -> None:
        super().add(block)
        self.blocks.append(block)

    def samples(self) -> np.ndarray:
        if not self.blocks:
            return np.zeros((0, self.channels), np.float32)
        return np.concatenate(self.blocks) if len(self.blocks) > 1 else self.blocks[0]


class _MonoSink(_Sink):
    """Downmixes each block, keeps the statistics :func:`valid_audio` checks, resamples it to
    ``sr`` (soxr's stream gives the samples of one whole-signal call) and stores only that."""

    def __init__(self, rate: int, sr: int, frames: int | None, max_decoded: int):
        super().__init__(rate, 1, max_decoded)
        self.sr = int(sr)
        self.n = 0  # mono samples at the input rate
        self.bad = 0  # NaN or infinite among them
        self.low, self.high = math.inf, -math.inf
        self.total = 0.0  # their sum (float64): the DC offset is total / n
        self._resampler = None
        self._out: list[np.ndarray] = []
        expected = math.ceil(frames * self.sr / self.rate) + 16 if frames else 0
        self._buf = np.empty(expected, np.float32) if 0 < expected <= max(1, max_decoded) // 4 else None
        self._used = 0

    def add(self, block: np.ndarray) -> None:
        self.frames += len(block)  # the budget counts the input's channels
        _check_decoded(self.frames, block.shape[1] if block.ndim == 2 else 1, self.rate, self.max_decoded,
                       at_least=True)
        y = _downmix(block)
        if not y.size:
            return
        self.n += y.size
        finite = np.isfinite(y)
        if not finite.all():
            self.bad += int(y.size - np.count_nonzero(finite))
        elif not self.bad:  # the range and silence checks only matter for finite audio
            self.low, self.high = min(self.low, float(y.min())), max(self.high, float(y.max()))
            self.total += float(y.sum(dtype=np.float64))
        if self.bad:
            return  # refused in finish(): nothing more to keep
        self._keep(self._resample(y, last=False))

    def _resample(self, y: np.ndarray, *, last: bool) -> np.ndarray:
        if self.rate == self.sr:
            return y
        if self._resampler is None:
            self._resampler = soxr.ResampleStream(self.rate, self.sr, 1, dtype="float32", quality="HQ")
        return self._resampler.resample_chunk(np.ascontiguousarray(y, dtype=np.float32), last=last)

    def _keep(self, y: np.ndarray) -> None:
        if not y.size:
            return
        if self._buf is not None and self._used + y.size <= self._buf.size:
            self._buf[self._used: self._used + y.size] = y
            self._used += y.size
            return
        if self._buf is not None:  # the header under-counted (an estimate, as for MP3): go on in pieces
            self._out.append(self._buf[: self._used])
            self._buf = None
        self._out.append(np.array(y, dtype=np.float32, copy=True))

    def finish(self, *, max_duration: float) -> np.ndarray:
        """The mono signal at ``sr``, checked as :func:`valid_audio` checks, DC offset removed."""
        _check_rate(self.rate)
        if self.n == 0:
            raise AudioError(
                f"The input holds no audio samples (an empty recording); expected {ACCEPTED}."
            )
        _check_duration(self.n / self.rate, max_duration)
        if self.bad:
            raise AudioError(
                f"The audio has {self.bad} NaN or infinite samples of {self.n}; expected finite PCM samples."
            )
        _check_peak(max(abs(self.low), abs(self.high)))
        mean = np.float32(self.total / self.n)
        # a DC offset is not voice, and it would fool the silence check: max |y - mean| from the extremes
        if max(np.float32(self.high) - mean, mean - np.float32(self.low)) < SILENCE_PEAK:
            _refuse_silence()
        if self.rate != self.sr:
            self._keep(self._resample(np.zeros(0, np.float32), last=True))
        if self._buf is not None:
            y = self._buf[: self._used]
        else:
            y = np.concatenate(self._out) if self._out else np.zeros(0, np.float32)
        y -= mean
        return y


def _stream(source: AudioSource, sink_for, *, max_duration: float, max_size: int, max_decoded: int) -> _Sink:
    """Decode ``source`` block by block into ``sink_for(rate, channels, frames)`` and return the sink."""
    if isinstance(source, tuple):
        samples, rate = _decode_pair(source, max_decoded=max_decoded)
        _check_rate(rate)
        sink = sink_for(rate, samples.shape[1] if samples.ndim == 2 else 1, len(samples))
        for i in range(0, len(samples), BLOCK_FRAMES):
            sink.add(_as_float(samples[i: i + BLOCK_FRAMES]))
        return sink
    if isinstance(source, np.ndarray):
        raise AudioError("A bare array has no sample rate: pass (sample_rate, samples).")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        _check_size(len(data), max_size)
        return _decode_file(io.BytesIO(data), sink_for, name="The input", max_duration=max_duration,
                            max_decoded=max_decoded)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            what = "is a folder, not an audio file" if path.is_dir() else "does not exist"
            raise AudioError(f"{path} {what}; expected a file of {ACCEPTED}.")
        try:
            _check_size(path.stat().st_size, max_size)
            with path.open("rb") as f:
                return _decode_file(f, sink_for, name=path.name, max_duration=max_duration,
                                    max_decoded=max_decoded, path=path)
        except OSError as e:
            raise AudioError(f"Cannot read {path.name}: {e.strerror or e}.") from None
    raise AudioError(
        f"Unsupported audio source of type {type(source).__name__}: "
        "pass a file path, the file's bytes, or (sample_rate, samples)."
    )


def _decode_pair(source: tuple, *, max_decoded: int | None = None) -> tuple[np.ndarray, int]:
    """The ``(sample_rate, samples)`` pair Gradio's ``type="numpy"`` gives, as float32 (channels last;
    the budget is checked on the samples' count before any conversion)."""
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
    if samples.dtype.kind not in "iufb":
        raise AudioError(f"Samples must be integer or float numbers, got dtype {samples.dtype}.")
    if samples.ndim == 2 and samples.size and samples.shape[0] <= 8 and samples.shape[1] > samples.shape[0]:
        samples = samples.T  # librosa's (channels, n): channels last, as everywhere here
    if samples.ndim > 2:
        raise AudioError(
            f"Audio must be 1-D (mono) or 2-D (samples, channels); got shape {samples.shape}."
        )
    if max_decoded is not None and 0 < int(rate):
        channels = samples.shape[1] if samples.ndim == 2 else 1
        _check_decoded(samples.shape[0], channels, int(rate), max_decoded)
    return samples, int(rate)


def _check_size(n: int, limit: int) -> None:
    if n == 0:
        raise AudioError(f"The file is empty (0 bytes); expected {ACCEPTED}.")
    if n > limit:
        raise AudioError(
            f"The file is too large: {_fmt_bytes(n)}; the limit is {_fmt_bytes(limit)} "
            "(setting SER_MAX_BYTES)."
        )


def _check_decoded(frames: int, channels: int, rate: int, limit: int, *, at_least: bool = False) -> None:
    """Refuse an input whose samples would take more than ``limit`` bytes as float32."""
    size = int(frames) * max(1, int(channels)) * 4
    if size > limit:
        raise AudioError(
            f"The recording is too large once decoded: {'at least ' if at_least else ''}{_fmt_bytes(size)} "
            f"({channels} channel{'s' if channels != 1 else ''} × {rate / 1000:g} kHz × "
            f"{_fmt_seconds(frames / max(rate, 1))}); the limit is {_fmt_bytes(limit)} (setting "
            "SER_MAX_DECODED_MB). Send fewer channels, a lower sample rate or a shorter recording."
        )


def _decode_file(
    f: BinaryIO, sink_for, *, name: str, max_duration: float, max_decoded: int, path: Path | None = None
) -> _Sink:
    """libsndfile on an open binary file (never by name: it would guess MP3 from ``.mp3``)."""
    sink = None
    try:
        with sf.SoundFile(f) as snd:
            sink = _read_blocks(snd, sink_for, max_duration=max_duration, max_decoded=max_decoded)
    except AudioError:
        raise
    except Exception as e:  # libsndfile could not parse it: ffmpeg knows far more containers
        logger.debug("libsndfile could not read %s (%s); trying ffmpeg", name, e)
        sink = None
    if sink is None:  # outside the except block, so no decoder traceback is chained to the error
        f.seek(0)
        kind = _not_audio_kind(f.read(_SNIFF_BYTES))
        if kind is not None:
            raise AudioError(f"{name} is {kind}, not audio; expected {ACCEPTED}.")
        if path is not None:
            sink = _decode_ffmpeg(path, sink_for, name=name, max_duration=max_duration, max_decoded=max_decoded)
        else:
            f.seek(0)
            with tempfile.NamedTemporaryFile(prefix="ser-audio-", suffix=".bin") as tmp:
                shutil.copyfileobj(f, tmp)
                tmp.flush()
                sink = _decode_ffmpeg(Path(tmp.name), sink_for, name=name, max_duration=max_duration,
                                      max_decoded=max_decoded)
    if sink.frames == 0:
        raise AudioError(
            f"{name} holds no audio samples (an empty recording); expected {ACCEPTED}."
        )
    return sink


def _read_blocks(snd: sf.SoundFile, sink_for, *, max_duration: float, max_decoded: int,
                 cut: bool = False) -> _Sink:
    """Check the header (rate, duration, decoded size), then read it into a sink block by block.

    ``cut``: the file is ffmpeg's output, stopped at the limits (so the input is *at least* that long)."""
    rate, frames, channels = int(snd.samplerate), int(snd.frames), int(snd.channels)
    _check_rate(rate)
    if frames > 0:
        _check_duration(frames / rate, max_duration,
                        at_least=cut and frames / rate > max_duration + DURATION_MARGIN_S / 2)
        _check_decoded(frames, channels, rate, max_decoded, at_least=cut)
    sink = sink_for(rate, channels, frames if frames > 0 else None)
    while True:
        block = snd.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
        if not len(block):
            return sink
        sink.add(block)


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


def _decode_ffmpeg(path: Path, sink_for, *, name: str, max_duration: float, max_decoded: int) -> _Sink:
    """One ffmpeg call: the first audio stream as 32-bit float WAV at its own rate and channels,
    written to a temporary file that is then read block by block like any WAV.

    No ffprobe: the WAV header ffmpeg writes carries the rate and channel count. Output stops at
    ``max_duration + DURATION_MARGIN_S`` (``-t``) and at ``max_decoded`` bytes (``-fs``), so a
    long or many-channel file costs no more than the limits, on disk as in memory.
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
    with tempfile.TemporaryDirectory(prefix="ser-ffmpeg-") as tmp:
        wav = Path(tmp) / "decoded.wav"
        cmd = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error",
               "-i", f"file:{path.resolve()}",
               "-map", "0:a:0", "-vn", "-sn", "-dn", "-map_metadata", "-1"]
        if math.isfinite(max_duration):
            cmd += ["-t", f"{max_duration + DURATION_MARGIN_S:.3f}"]
        cmd += ["-fs", str(int(max_decoded) + 4096), "-c:a", "pcm_f32le", "-rf64", "auto", "-f", "wav",
                "-y", f"file:{wav}"]
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
        sink = None
        try:
            with sf.SoundFile(wav) as snd:
                # output stops near the limits (codec frames round them): the input may be longer
                sink = _read_blocks(snd, sink_for, max_duration=max_duration, max_decoded=max_decoded, cut=True)
        except AudioError:
            raise
        except Exception:
            sink = None
    if sink is None:
        logger.debug("ffmpeg could not decode %s (exit %s): %s", name, out.returncode, stderr)
        raise AudioError(not_audio)
    if out.returncode != 0:  # a partly decoded (truncated) stream: keep what was decoded
        logger.debug("ffmpeg decoded %s partly (exit %s): %s", name, out.returncode, stderr)
    return sink


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
    return _downmix(y)


def _downmix(y: np.ndarray) -> np.ndarray:
    """Mean of the channels of ``y`` [shape=(n,) or (n, channels)], channels last (no guessing:
    blocks of a few frames are read that way)."""
    if y.ndim == 1:
        return y
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
    _check_peak(float(np.max(np.abs(y))))
    y = remove_dc(y)  # a DC offset is not voice, and it would fool the silence check
    if float(np.max(np.abs(y))) < SILENCE_PEAK:
        _refuse_silence()
    return y.astype(np.float32, copy=False)


def _check_peak(peak: float) -> None:
    if peak > MAX_FLOAT_PEAK:
        raise AudioError(
            f"Samples out of range: peak {peak:.3g}; float audio must lie within [-1, 1] "
            "(scale integer PCM by its full scale, e.g. int16 / 32768)."
        )


def _refuse_silence() -> None:
    raise AudioError(
        f"The recording is silent (peak below {SILENCE_DBFS:.0f} dBFS once any DC offset is "
        "removed); record again closer to the microphone."
    )


def remove_dc(y: np.ndarray) -> np.ndarray:
    """``y`` minus its mean (computed in float64), as float32: every clip a model hears is DC-free,
    whether loaded whole or cut from a longer recording."""
    y = np.asarray(y, dtype=np.float32)
    if not y.size:
        return y
    return (y - np.float32(y.mean(dtype=np.float64))).astype(np.float32, copy=False)


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

    Exactly ``librosa.effects.trim`` with frames of :data:`TRIM_FRAME_LENGTH` and hops of
    :data:`TRIM_HOP_LENGTH` samples (a test checks the cut is the same), with the frames' RMS
    computed :data:`TRIM_BLOCK_FRAMES` frames at a time: librosa frames the whole signal at once,
    which for ten minutes at 16 kHz took 470 MiB. The same call runs at training and at
    prediction, so both see the same kind of clip.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    top_db : float

    Returns
    -------
    y_trimmed : np.ndarray [shape=(m,)], a view of ``y``, ``m <= n``
    """
    if not len(y):
        return y
    db = librosa.amplitude_to_db(_frame_rms(y), ref=np.max, top_db=None)
    loud = np.flatnonzero(db > -top_db)
    if not loud.size:
        return y[0:0]
    start = int(loud[0]) * TRIM_HOP_LENGTH
    end = min(len(y), (int(loud[-1]) + 1) * TRIM_HOP_LENGTH)
    return y[start:end]


#: Frames whose RMS is computed at once when trimming (2 MiB of framed float32).
TRIM_BLOCK_FRAMES = 1024


def _frame_rms(y: np.ndarray) -> np.ndarray:
    """``librosa.feature.rms(y=y, frame_length=TRIM_FRAME_LENGTH, hop_length=TRIM_HOP_LENGTH)[0]``
    (centred frames, zero padding), block by block: the same numbers, bounded memory."""
    frame, hop, pad = TRIM_FRAME_LENGTH, TRIM_HOP_LENGTH, TRIM_FRAME_LENGTH // 2
    n_frames = 1 + (len(y) + 2 * pad - frame) // hop
    out = np.empty(n_frames, dtype=np.result_type(y.dtype, np.float32))
    for a in range(0, n_frames, TRIM_BLOCK_FRAMES):
        b = min(n_frames, a + TRIM_BLOCK_FRAMES)
        lo, hi = a * hop - pad, (b - 1) * hop + frame - pad  # the samples these frames cover
        chunk = y[max(lo, 0): min(hi, len(y))]
        if lo < 0 or hi > len(y):
            chunk = np.pad(chunk, (max(0, -lo), max(0, hi - len(y))))
        out[a:b] = librosa.feature.rms(y=chunk, frame_length=frame, hop_length=hop, center=False)[0]
    return out
