"""A table of bad and odd audio files, shared by the loader's tests and the app's API tests.

``make_cases(tmp_dir)`` writes every file into ``tmp_dir`` (about 3 MB, well under a second) and
returns one :class:`Case` per file. A test sends ``case.path`` through its own entry point with
``case.env`` set in the environment of the process that loads audio, then checks:

* ``expect_error`` is a lowercase fragment of the :class:`ser.errors.AudioError` message, or
* ``expect_error is None``: the file loads; if ``reference`` is set, the result is close to what
  the lossless 16 kHz ``reference`` file loads to (same duration within a few ms); if
  ``duration_s`` is set, the result lasts about that long.

Names are fixed in :data:`CASE_NAMES` so tests can parametrize before any file exists; a case
whose tool is missing (ffmpeg) is left out of ``make_cases`` and should be skipped.

Nothing here imports ``ser``: the files are made with numpy, scipy, soundfile and ffmpeg only.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

__all__ = ["Case", "CASE_NAMES", "make_cases", "speech_like", "zeros_flac", "claim_frames", "bomb_8ch_192k", "SR", "VOICED_S",
           "LEAD_S"]

SR = 16_000  # Hz, the rate of the reference clip
VOICED_S = 1.6  # seconds of voicing in speech_like()
LEAD_S = 0.2  # seconds of digital silence before and after it
SEED = 20_240_601


@dataclass(frozen=True)
class Case:
    """One input file and what loading it must do."""

    name: str
    path: Path
    expect_error: str | None  # lowercase fragment of the AudioError message; None = loads
    env: dict[str, str] = field(default_factory=dict)  # settings the case needs (e.g. limits)
    reference: Path | None = None  # lossless 16 kHz original this file was derived from
    duration_s: float | None = None  # expected duration after loading (trimmed), when known


CASE_NAMES = (
    # refused
    "empty_file",
    "wav_header_only",
    "wav_truncated_header",
    "text_as_wav",
    "png_as_mp3",
    "random_bytes_as_webm",
    "too_short_0.1s",
    "digital_silence_10s",
    "constant_dc",
    "float_wav_nan",
    "float_wav_inf",
    "float_wav_unscaled",
    "rate_4khz",
    "longer_than_limit",
    "larger_than_limit",
    # loaded
    "reference_16k_pcm16",
    "wav_truncated_data",
    "white_noise",
    "clipping_square",
    "telephone_8k",
    "float32_192k",
    "six_channel_48k",
    "wav_24bit",
    "wav_8bit_unsigned",
    "flac_44k_stereo",
    "webm_opus",
    "m4a_aac",
    "mp3",
    "ogg_vorbis",
)


def speech_like(
    duration_s: float = VOICED_S + 2 * LEAD_S,
    *,
    sr: int = SR,
    lead_s: float = LEAD_S,
    f0: float = 140.0,
    peak: float = 0.5,
) -> np.ndarray:
    """A voiced, speech-like test signal: a harmonic tone with vibrato, syllables and silences.

    ``lead_s`` of digital silence, then a glottal-like harmonic series (12 harmonics, 1/k
    amplitudes) at ``f0`` with 3 % vibrato at 5 Hz, amplitude-modulated at a syllable rate of
    4 Hz (never below -14 dB, so it is all "voice" to a -30 dB trim) with 30 ms raised-cosine
    attack and release, then ``lead_s`` of silence again.

    Returns
    -------
    y : np.ndarray [shape=(round(duration_s * sr),), dtype=float32], peak ``peak``
    """
    n = int(round(duration_s * sr))
    lead = int(round(lead_s * sr))
    m = max(n - 2 * lead, 0)
    t = np.arange(m) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))) / sr
    voice = sum(np.sin(k * phase) / k for k in range(1, 13))
    envelope = 0.6 + 0.4 * np.cos(2 * np.pi * 4 * t)
    ramp = min(int(0.03 * sr), m // 2)
    if ramp:
        fade = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        envelope[:ramp] *= fade
        envelope[m - ramp:] *= fade[::-1]
    voice = voice * envelope
    if m:
        voice *= peak / np.max(np.abs(voice))
    y = np.zeros(n)
    y[lead:lead + m] = voice
    return y.astype(np.float32)


def _png_bytes() -> bytes:
    """A valid 4x4 grey PNG."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    rows = b"".join(b"\x00" + bytes([128] * 4) for _ in range(4))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _ffmpeg(src: Path, dst: Path, *args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", str(src), *args,
         str(dst)],
        check=True, capture_output=True, timeout=60,
    )


def make_cases(tmp_dir: str | Path) -> list[Case]:
    """Write every case file into ``tmp_dir`` and return the cases, in :data:`CASE_NAMES` order.

    Cases made with ffmpeg (WebM/Opus, M4A/AAC, MP3) are left out when ffmpeg is missing.
    """
    from scipy.signal import resample_poly

    d = Path(tmp_dir)
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    voiced = speech_like()
    voiced_s = VOICED_S  # what trimming leaves of speech_like(), within a frame or two
    cases: list[Case] = []

    def add(name: str, filename: str, expect: str | None, **kw) -> Path:
        path = d / filename
        cases.append(Case(name, path, expect, **kw))
        return path

    ref = add("reference_16k_pcm16", "reference.wav", None, duration_s=voiced_s)
    sf.write(ref, voiced, SR, subtype="PCM_16")
    ref_bytes = ref.read_bytes()

    # --- refused --------------------------------------------------------------------------
    add("empty_file", "empty.wav", "empty (0 bytes)").write_bytes(b"")
    header = ref_bytes[:44]  # soundfile writes a plain 44-byte RIFF/WAVE header
    assert header[36:40] == b"data", "expected a canonical 44-byte WAV header"
    header = header[:4] + struct.pack("<I", 36) + header[8:40] + struct.pack("<I", 0)
    add("wav_header_only", "header_only.wav", "no audio samples").write_bytes(header)
    add("wav_truncated_header", "truncated_header.wav", "not audio").write_bytes(ref_bytes[:30])
    add("text_as_wav", "notes.wav", "not audio").write_text(
        "These are meeting notes, not a recording.\n" * 20, encoding="utf-8")
    add("png_as_mp3", "picture.mp3", "not audio").write_bytes(_png_bytes())
    add("random_bytes_as_webm", "noise.webm", "not audio").write_bytes(
        rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    sf.write(add("too_short_0.1s", "short.wav", "too short"),
             speech_like(0.1, lead_s=0.0), SR, subtype="PCM_16")
    sf.write(add("digital_silence_10s", "silence.wav", "silent"),
             np.zeros(10 * SR, dtype=np.int16), SR, subtype="PCM_16")
    sf.write(add("constant_dc", "dc.wav", "silent"),
             np.full(2 * SR, 0.25, dtype=np.float32), SR, subtype="PCM_16")
    nan = voiced.copy()
    nan[rng.integers(0, len(nan), 5)] = np.nan
    sf.write(add("float_wav_nan", "nan.wav", "nan or infinite"), nan, SR, subtype="FLOAT")
    inf = voiced.copy()
    inf[len(inf) // 2] = np.inf
    inf[len(inf) // 3] = -np.inf
    sf.write(add("float_wav_inf", "inf.wav", "nan or infinite"), inf, SR, subtype="FLOAT")
    sf.write(add("float_wav_unscaled", "unscaled.wav", "out of range"),
             voiced * 32767.0, SR, subtype="FLOAT")
    sf.write(add("rate_4khz", "rate_4k.wav", "unsupported sample rate 4000 hz"),
             resample_poly(voiced, 1, 4).astype(np.float32), 4_000, subtype="PCM_16")
    long = speech_like(3.0)  # 3 s against a 2 s limit: fast, and names the limit
    sf.write(add("longer_than_limit", "long.wav", "too long: 3 s; the limit is 2 s",
                 env={"SER_MAX_DURATION_S": "2"}), long, SR, subtype="PCM_16")
    big = add("larger_than_limit", "big.wav", "too large", env={"SER_MAX_BYTES": "32768"})
    big.write_bytes(ref_bytes)  # 64 KB against 32 KiB

    # --- loaded ---------------------------------------------------------------------------
    truncated = add("wav_truncated_data", "truncated_data.wav", None,
                    duration_s=voiced_s - (0.5 - LEAD_S))
    truncated.write_bytes(ref_bytes[: 44 + 2 * (len(voiced) - SR // 2)])  # last 0.5 s cut off
    sf.write(add("white_noise", "white_noise.wav", None, duration_s=2.0),
             rng.uniform(-0.5, 0.5, 2 * SR).astype(np.float32), SR, subtype="PCM_16")
    # a 220 Hz sine driven 12 dB past full scale: clipped into a near-square wave
    square = np.clip(4.0 * np.sin(2 * np.pi * 220 * np.arange(SR) / SR), -1.0, 1.0)
    sf.write(add("clipping_square", "square.wav", None, duration_s=1.0),
             square.astype(np.float32), SR, subtype="PCM_16")
    sf.write(add("telephone_8k", "telephone_8k.wav", None, reference=ref),
             resample_poly(voiced, 1, 2).astype(np.float32), 8_000, subtype="PCM_16")
    sf.write(add("float32_192k", "hires_192k.wav", None, reference=ref),
             resample_poly(voiced, 12, 1).astype(np.float32), 192_000, subtype="FLOAT")
    at48 = resample_poly(voiced, 3, 1)
    gains = np.array([1.0, 0.9, 0.7, 0.0, 0.5, 0.5])  # 5.1: L, R, C, LFE (silent), Ls, Rs
    sf.write(add("six_channel_48k", "surround_48k.wav", None, reference=ref),
             (at48[:, None] * gains).astype(np.float32), 48_000, subtype="PCM_16")
    sf.write(add("wav_24bit", "pcm24.wav", None, reference=ref), voiced, SR, subtype="PCM_24")
    sf.write(add("wav_8bit_unsigned", "pcm_u8.wav", None, reference=ref), voiced, SR,
             subtype="PCM_U8")
    at44 = resample_poly(voiced, 441, 160).astype(np.float32)
    sf.write(add("flac_44k_stereo", "stereo_44k.flac", None, reference=ref),
             np.stack([at44, at44], axis=1), 44_100, subtype="PCM_16")
    if shutil.which("ffmpeg"):
        _ffmpeg(ref, add("webm_opus", "browser.webm", None, reference=ref),
                "-ar", "48000", "-c:a", "libopus", "-b:a", "48k")
        _ffmpeg(ref, add("m4a_aac", "phone.m4a", None, reference=ref),
                "-ar", "44100", "-c:a", "aac", "-b:a", "96k")
        _ffmpeg(ref, add("mp3", "clip.mp3", None, reference=ref),
                "-ar", "44100", "-c:a", "libmp3lame", "-b:a", "96k")
        _ffmpeg(ref, add("ogg_vorbis", "clip.ogg", None, reference=ref),
                "-c:a", "libvorbis", "-q:a", "4")
    else:  # ogg_vorbis can be written without ffmpeg
        sf.write(add("ogg_vorbis", "clip.ogg", None, reference=ref), voiced, SR, format="OGG",
                 subtype="VORBIS")

    order = {name: i for i, name in enumerate(CASE_NAMES)}
    assert {c.name for c in cases} <= set(order), "every case must be listed in CASE_NAMES"
    return sorted(cases, key=lambda c: order[c.name])


def zeros_flac(path: Path, *, rate: int, channels: int, seconds: float) -> Path:
    """``seconds`` of digital silence as 16-bit FLAC (compresses to almost nothing)."""
    with sf.SoundFile(path, "w", rate, channels, subtype="PCM_16", format="FLAC") as out:
        block = np.zeros((rate * 10, channels), np.int16)
        for _ in range(int(seconds // 10)):
            out.write(block)
    return path


def claim_frames(flac: Path, frames: int) -> Path:
    """Rewrite the total-samples field of a FLAC's STREAMINFO (36 bits at byte 21): the header of a
    longer file of the same kind, in milliseconds instead of seconds of encoding."""
    data = bytearray(Path(flac).read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO comes first
    field_ = int.from_bytes(data[21:26], "big")
    field_ = (field_ & ~((1 << 36) - 1)) | frames
    data[21:26] = field_.to_bytes(5, "big")
    Path(flac).write_bytes(bytes(data))
    return Path(flac)


def bomb_8ch_192k(folder: Path) -> Path:
    """The issue's file: 590 s of 8-channel 192 kHz silence (0.9 MB of FLAC, 3.5 GiB decoded), as its
    header (10 s of it, claiming 590 s)."""
    return claim_frames(zeros_flac(Path(folder) / "bomb_8ch_192k.flac", rate=192_000, channels=8, seconds=10),
                        590 * 192_000)
