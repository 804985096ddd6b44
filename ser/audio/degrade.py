"""Degradations real audio suffers: noise, telephone band, lossy codecs, reverberation, gain.

Pure functions, arrays in and arrays out (float32 mono), deterministic for a given ``seed``. They
serve two purposes:

* **robustness evaluation**: speaker-independent test folds are degraded and the accuracy reported
  per condition (``bench/robustness.py``);
* **robust training**: degraded copies of *training* clips only, by name, as augmentation.

Every degradation is also a named *variant* (:func:`parse_variant`), so
:func:`ser.features.map_corpus` computes and caches features of degraded clips like any other
augmentation. Degradations are applied to the clip **before** silence trimming (a noisy recording
reaches the loader with its noisy pauses), augmentations after.

Variant names
-------------
==================  ==========================================================================
``white10dB``        white Gaussian noise at 10 dB SNR (any integer dB)
``babble5dB``        babble-like noise (synthetic multi-talker, :func:`babble_noise`) at 5 dB SNR
``telephone``        8 kHz narrow band, 300–3400 Hz, G.711 mu-law (:func:`telephone`)
``opus@8k``          Opus at 8 kbit/s through ffmpeg (``mp3@16k``: MP3 at 16 kbit/s)
``reverb0.5s``       synthetic room, RT60 = 0.5 s (:func:`reverb`)
``gain-20dB``        level change; positive gains clip at full scale as a converter would
``degraded1``        a random chain (reverb, noise, gain, channel) drawn per clip; ``degraded2``
                     draws another: the robust-training augmentation
==================  ==========================================================================

The SNR is measured against the power of the *voiced* part of the clip (samples left by the
loader's :func:`ser.audio.trim_silence`), so leading and trailing pauses do not make a clip look
cleaner than it is.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import zlib

import numpy as np
from scipy.signal import butter, fftconvolve, sosfilt

from ..errors import AudioError
from .io import SAMPLE_RATE, resample, trim_silence

__all__ = [
    "mix_noise",
    "add_noise",
    "babble_noise",
    "white_noise",
    "telephone",
    "codec",
    "reverb",
    "room_impulse_response",
    "gain",
    "voiced_power",
    "parse_variant",
    "apply_degradation",
    "random_chain",
    "TEST_CONDITIONS",
    "TRAINING_VARIANTS",
    "EXAMPLES",
    "CODEC_TIMEOUT_S",
]

#: The conditions of the robustness report, in the order of its table and chart.
TEST_CONDITIONS: tuple[str, ...] = (
    "white20dB", "white10dB", "white5dB", "babble20dB", "babble10dB", "babble5dB", "telephone",
    "opus@8k", "mp3@16k", "reverb0.3s", "reverb0.8s", "gain-20dB", "gain+10dB",
)
#: Degraded copies added to training folds for the robust model (random chains, not the test grid).
TRAINING_VARIANTS: tuple[str, ...] = ("degraded1", "degraded2")
EXAMPLES = ("white10dB", "babble5dB", "telephone", "opus@8k", "mp3@16k", "reverb0.5s", "gain-20dB",
            "degraded1")
#: Longest an ffmpeg encode or decode may take, in seconds.
CODEC_TIMEOUT_S = 30.0
#: Bit rates accepted per codec (kbit/s); MP3 at 16 kHz is MPEG-2 layer III, which has these.
CODEC_BITRATES = {"opus": (6, 8, 12, 16, 24, 32, 48, 64), "mp3": (8, 16, 24, 32, 40, 48, 56, 64)}

_PATTERNS = (
    ("noise", re.compile(r"^(white|babble)(\d+)dB$")),
    ("telephone", re.compile(r"^telephone$")),
    ("codec", re.compile(r"^(opus|mp3)@(\d+)k$")),
    ("reverb", re.compile(r"^reverb(\d+(?:\.\d+)?)s$")),
    ("gain", re.compile(r"^gain([+-]\d+(?:\.\d+)?)dB$")),
    ("chain", re.compile(r"^degraded(\d+)$")),
)


def _seed(key: str, variant: str) -> int:
    return zlib.crc32(f"{key}|{variant}".encode())


def voiced_power(y: np.ndarray) -> float:
    """Mean square of the voiced part of ``y`` (after :func:`ser.audio.trim_silence`)."""
    y = np.asarray(y, dtype=np.float32)
    voiced = trim_silence(y) if len(y) >= 2048 else y
    if len(voiced) == 0:
        voiced = y
    return float(np.mean(np.square(voiced, dtype=np.float64)))


def white_noise(n: int, *, seed: int = 0) -> np.ndarray:
    """``n`` samples of white Gaussian noise (unit variance)."""
    return np.random.default_rng(seed).standard_normal(n)


def babble_noise(n: int, *, sr: int = SAMPLE_RATE, talkers: int = 6, seed: int = 0) -> np.ndarray:
    """Synthetic babble: ``talkers`` speech-like voices summed (no recording needed).

    Each voice is a glottal-like sawtooth with a wandering pitch (85–255 Hz) plus breath noise,
    shaped to the long-term speech spectrum (100 Hz – 4 kHz, falling above 500 Hz), gated on and
    off at syllable rate (about 4 Hz). Summed, they give the spectrum, harmonicity and flattened
    modulation of a crowd of talkers. Pass real speech of other speakers to :func:`add_noise`
    (``noise=``) when you have it.

    Returns
    -------
    noise : np.ndarray [shape=(n,), dtype=float64], unit power
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    out = np.zeros(n)
    shape = np.vstack([butter(2, 100.0, "highpass", fs=sr, output="sos"),
                       butter(2, 500.0, "lowpass", fs=sr, output="sos"),
                       butter(4, min(4000.0, 0.45 * sr), "lowpass", fs=sr, output="sos")])
    for _ in range(talkers):
        base = rng.uniform(85.0, 255.0)
        # pitch wanders slowly (a smoothed random walk, +-30 %)
        walk = np.cumsum(rng.standard_normal(n // 160 + 2)) * 0.03
        f0 = base * np.exp(np.clip(np.interp(t, np.arange(len(walk)) * 0.01, walk), -0.3, 0.3))
        phase = np.cumsum(f0 / sr)
        voice = 2.0 * (phase % 1.0) - 1.0 + 0.3 * rng.standard_normal(n)
        voice = sosfilt(shape, voice)
        # syllable-rate gate: on/off segments of 100-400 ms, smoothed over 30 ms
        gate = np.zeros(n)
        pos, on = 0, rng.random() < 0.5
        while pos < n:
            length = int(rng.uniform(0.1, 0.4) * sr)
            gate[pos:pos + length] = 1.0 if on else 0.05
            pos, on = pos + length, not on
        k = max(1, int(0.03 * sr))
        gate = np.convolve(gate, np.ones(k) / k, mode="same")
        out += voice * gate * rng.uniform(0.6, 1.0)
    power = float(np.mean(out**2))
    return out / np.sqrt(power) if power > 0 else out


def mix_noise(
    y: np.ndarray,
    *,
    snr_db: float = 20.0,
    seed: int = 0,
    noise: np.ndarray | None = None,
    signal_power: float | None = None,
) -> np.ndarray:
    """Add noise at a signal-to-noise ratio of ``snr_db`` dB.

    Without ``noise``, white Gaussian noise of expected power ``P_s / 10 ** (snr_db / 10)``
    (seeded by ``seed``). With ``noise`` (any recording or synthetic noise, looped or cut to
    ``len(y)``), it is scaled so that its *measured* power is exactly that.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    noise : np.ndarray [shape=(m,)], optional
        The noise to mix in (:func:`add_noise` passes babble or exact-power white noise).
    signal_power : float, optional
        ``P_s``; default the mean square of ``y`` (:func:`add_noise` passes the
        power of the voiced part only).
    """
    power = float(np.mean(np.square(y, dtype=np.float64))) if signal_power is None else float(signal_power)
    target = power / 10 ** (snr_db / 10)
    if noise is None:
        rng = np.random.default_rng(seed)
        mixed = rng.standard_normal(len(y)) * np.sqrt(target)
    else:
        noise = np.asarray(noise, dtype=np.float64)
        if noise.ndim != 1 or len(noise) == 0:
            raise ValueError(f"noise must be a non-empty 1-D array, got shape {noise.shape}.")
        noise = np.resize(noise, len(y))  # loop a short noise, cut a long one
        noise_power = float(np.mean(np.square(noise)))
        mixed = noise * np.sqrt(target / noise_power) if noise_power > 0 else noise
    return (y + mixed).astype(np.float32)


def add_noise(
    y: np.ndarray,
    *,
    snr_db: float,
    kind: str = "white",
    noise: np.ndarray | None = None,
    sr: int = SAMPLE_RATE,
    seed: int = 0,
) -> np.ndarray:
    """Mix noise in at ``snr_db`` dB relative to the voiced power of ``y`` (:func:`voiced_power`).

    ``SNR = 10 log10(P_voiced(y) / P_noise)`` holds exactly for the noise actually added.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    kind : {"white", "babble"}
        Ignored when ``noise`` is given.
    noise : np.ndarray [shape=(m,)], optional
        Noise to use, e.g. a mix of other speakers' clips (real babble); looped or cut to ``n``.
    """
    if kind not in ("white", "babble"):
        raise ValueError(f"Unknown noise kind {kind!r}; expected 'white' or 'babble'.")
    y = np.asarray(y, dtype=np.float32)
    if noise is None:
        noise = white_noise(len(y), seed=seed) if kind == "white" else babble_noise(len(y), sr=sr, seed=seed)
    return mix_noise(y, snr_db=snr_db, noise=noise, signal_power=voiced_power(y))


def telephone(y: np.ndarray, *, sr: int = SAMPLE_RATE, mulaw: bool = True) -> np.ndarray:
    """A narrow-band telephone channel: 8 kHz, band-pass 300–3400 Hz, G.711 mu-law, back to ``sr``.

    The band-pass is an order-6 Butterworth (causal, as a channel is); mu-law companding
    quantises to 8 bits (``mu = 255``) after peak normalisation, then the level is restored.
    """
    y = np.asarray(y, dtype=np.float32)
    narrow = resample(y, orig_sr=sr, sr=8000).astype(np.float64)
    sos = butter(6, [300.0, 3400.0], btype="bandpass", fs=8000, output="sos")
    narrow = sosfilt(sos, narrow)
    if mulaw:
        peak = float(np.max(np.abs(narrow))) or 1.0
        x = narrow / peak
        mu = 255.0
        code = np.round((np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) + 1) / 2 * 255)
        x = 2 * code / 255 - 1
        narrow = np.sign(x) * ((1 + mu) ** np.abs(x) - 1) / mu * peak
    out = resample(narrow.astype(np.float32), orig_sr=8000, sr=sr)
    return np.asarray(out[:len(y)], dtype=np.float32)


def _ffmpeg(args: list[str], data: bytes, *, what: str) -> bytes:
    """Run ffmpeg with ``data`` on stdin; its stdout (may be empty when writing a file)."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise AudioError(f"{what} needs ffmpeg, which is not installed (apt-get install ffmpeg).")
    try:
        done = subprocess.run([exe, "-nostdin", "-hide_banner", "-loglevel", "error", *args], input=data,
                              capture_output=True, timeout=CODEC_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise AudioError(f"{what}: ffmpeg took longer than {CODEC_TIMEOUT_S:g} s.") from None
    if done.returncode != 0:
        msg = done.stderr.decode(errors="replace").strip().splitlines()
        raise AudioError(f"{what}: ffmpeg failed ({msg[-1] if msg else f'exit {done.returncode}'}).")
    return done.stdout


def codec(y: np.ndarray, *, sr: int = SAMPLE_RATE, codec: str = "opus", bitrate: int = 8) -> np.ndarray:
    """Encode with a lossy codec at ``bitrate`` kbit/s and decode back (two ffmpeg calls, each
    with a timeout of :data:`CODEC_TIMEOUT_S`).

    Parameters
    ----------
    codec : {"opus", "mp3"}
        libopus (``-application voip``) in Ogg, or libmp3lame (CBR).
    bitrate : int
        kbit/s, one of :data:`CODEC_BITRATES` for the codec.

    Returns
    -------
    y_hat : np.ndarray [shape=(about n,), dtype=float32] at ``sr``; the decoders remove the codec
        delay the container records, so the length stays within a frame of ``n``.
    """
    if codec not in CODEC_BITRATES:
        raise ValueError(f"Unknown codec {codec!r}; expected one of {sorted(CODEC_BITRATES)}.")
    if int(bitrate) not in CODEC_BITRATES[codec]:
        raise ValueError(f"{codec} bitrate {bitrate!r} kbit/s not supported; choose from {CODEC_BITRATES[codec]}.")
    y = np.ascontiguousarray(y, dtype="<f4")
    raw = ["-f", "f32le", "-ar", str(sr), "-ac", "1"]
    if codec == "opus":
        enc = ["-c:a", "libopus", "-b:a", f"{bitrate}k", "-application", "voip", "-f", "ogg"]
    else:
        enc = ["-c:a", "libmp3lame", "-b:a", f"{bitrate}k", "-f", "mp3"]
    what = f"{codec} at {bitrate} kbit/s"
    # A seekable file (not a pipe) lets the MP3 muxer write its LAME header, whose encoder-delay
    # and padding fields the decoder uses to return the original length (gapless).
    with tempfile.TemporaryDirectory(prefix="ser-codec-") as tmp:
        encoded = os.path.join(tmp, "clip.ogg" if codec == "opus" else "clip.mp3")
        _ffmpeg([*raw, "-i", "pipe:0", *enc, "-y", encoded], y.tobytes(), what=f"encoding {what}")
        decoded = _ffmpeg(["-i", encoded, *raw, "pipe:1"], b"", what=f"decoding {what}")
    return np.frombuffer(decoded, dtype="<f4").astype(np.float32)


def room_impulse_response(rt60: float, *, sr: int = SAMPLE_RATE, drr_db: float = 0.0, seed: int = 0) -> np.ndarray:
    """A synthetic room impulse response: a direct path, then exponentially decaying noise.

    ``h[0] = 1``; the tail ``h[n] = g * w[n] * 10 ** (-3 t / rt60)`` (``t = n / sr``, ``w`` white
    noise) starts 2.5 ms later, lasts ``1.2 * rt60``, and ``g`` sets the direct-to-reverberant
    energy ratio to ``drr_db``. Energy falls by 60 dB in ``rt60`` seconds.
    """
    if not rt60 > 0:
        raise ValueError(f"rt60 must be > 0 seconds, got {rt60!r}.")
    rng = np.random.default_rng(seed)
    n = max(2, int(1.2 * rt60 * sr))
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * 10 ** (-3 * t / rt60)
    tail[: int(0.0025 * sr)] = 0.0
    tail *= np.sqrt(10 ** (-drr_db / 10) / np.sum(tail**2))
    tail[0] = 1.0
    return tail


def reverb(y: np.ndarray, *, sr: int = SAMPLE_RATE, rt60: float = 0.5, drr_db: float = 0.0, seed: int = 0) -> np.ndarray:
    """Convolve with :func:`room_impulse_response`; the output keeps its reverberant tail
    (``n + len(h) - 1`` samples) and the input's voiced power (reverberation is not a gain change)."""
    y = np.asarray(y, dtype=np.float32)
    wet = fftconvolve(y.astype(np.float64), room_impulse_response(rt60, sr=sr, drr_db=drr_db, seed=seed))
    p_in, p_out = voiced_power(y), voiced_power(wet.astype(np.float32))
    if p_out > 0:
        wet *= np.sqrt(p_in / p_out)
    return wet.astype(np.float32)


def gain(y: np.ndarray, *, db: float, clip: bool = False) -> np.ndarray:
    """``y * 10 ** (db / 20)``; with ``clip``, limited to ``[-1, 1]`` as a converter would."""
    out = np.asarray(y, dtype=np.float64) * 10 ** (db / 20)
    if clip:
        out = np.clip(out, -1.0, 1.0)
    return out.astype(np.float32)


def parse_variant(name: str) -> tuple[str, tuple] | None:
    """``(kind, arguments)`` of a degradation's name, or None when it is not one.

    >>> parse_variant("babble5dB"), parse_variant("opus@8k"), parse_variant("pitch+2")
    (('noise', ('babble', 5.0)), ('codec', ('opus', 8)), None)
    """
    for kind, pattern in _PATTERNS:
        m = pattern.match(name)
        if m is None:
            continue
        g = m.groups()
        if kind == "noise":
            return kind, (g[0], float(g[1]))
        if kind == "codec":
            return kind, (g[0], int(g[1]))
        if kind in ("reverb", "gain"):
            return kind, (float(g[0]),)
        if kind == "chain":
            return kind, (int(g[0]),)
        return kind, ()
    return None


def random_chain(seed: int) -> list[str]:
    """The degradations of one random training copy, in the order sound meets them.

    Room (reverb, RT60 0.2–0.9 s, 30 %), noise (white or babble, SNR 5–20 dB, 60 %), gain
    (-20..+6 dB), channel (telephone 20 %, Opus 6–16 kbit/s 20 %, MP3 16–32 kbit/s 20 %, none 40 %).
    """
    rng = np.random.default_rng(seed)
    chain = []
    if rng.random() < 0.3:
        chain.append(f"reverb{rng.uniform(0.2, 0.9):.2f}s")
    if rng.random() < 0.6:
        chain.append(f"{rng.choice(['white', 'babble'])}{int(rng.integers(5, 21))}dB")
    chain.append(f"gain{int(rng.integers(-20, 7)):+d}dB")
    channel = rng.random()
    if channel < 0.2:
        chain.append("telephone")
    elif channel < 0.4:
        chain.append(f"opus@{int(rng.choice([6, 8, 12, 16]))}k")
    elif channel < 0.6:
        chain.append(f"mp3@{int(rng.choice([16, 24, 32]))}k")
    return chain


def apply_degradation(y: np.ndarray, variant: str, *, sr: int = SAMPLE_RATE, key: str = "") -> np.ndarray:
    """Apply a degradation by name (:func:`parse_variant`); ``key`` (the clip's hash) seeds it."""
    parsed = parse_variant(variant)
    if parsed is None:
        raise ValueError(f"Unknown degradation {variant!r}; expected names like {', '.join(EXAMPLES)}.")
    kind, args = parsed
    seed = _seed(key, variant)
    if kind == "noise":
        return add_noise(y, snr_db=args[1], kind=args[0], sr=sr, seed=seed)
    if kind == "telephone":
        return telephone(y, sr=sr)
    if kind == "codec":
        return codec(y, sr=sr, codec=args[0], bitrate=args[1])
    if kind == "reverb":
        return reverb(y, sr=sr, rt60=args[0], seed=seed)
    if kind == "gain":
        return gain(y, db=args[0], clip=args[0] > 0)
    for step in random_chain(seed):  # kind == "chain"
        y = apply_degradation(y, step, sr=sr, key=f"{key}|{variant}")
    return y
