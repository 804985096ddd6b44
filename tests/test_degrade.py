"""Degradations do what their names say: SNR, band limits, gain, codec round trips, RT60."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ser.audio import augment
from ser.audio import degrade
from ser.audio.io import trim_silence
from ser.errors import AudioError

try:
    from audio_cases import SR, speech_like
except ImportError:  # pragma: no cover
    from tests.audio_cases import SR, speech_like

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


def _band_power(y: np.ndarray, lo: float, hi: float, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(y), 1 / sr)
    return float(spec[(f >= lo) & (f < hi)].sum())


def _db(x: float) -> float:
    return 10 * np.log10(x)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speech_like()  # 0.2 s silence, 1.6 s voiced, 0.2 s silence


@pytest.mark.parametrize("kind", ["white", "babble"])
@pytest.mark.parametrize("snr", [20.0, 10.0, 5.0, 0.0])
def test_add_noise_has_the_requested_snr_over_the_voiced_part(speech, kind, snr):
    out = degrade.add_noise(speech, snr_db=snr, kind=kind, seed=3)
    noise = out.astype(np.float64) - speech
    measured = _db(np.mean(trim_silence(speech).astype(np.float64) ** 2) / np.mean(noise**2))
    assert measured == pytest.approx(snr, abs=0.02)
    # against the whole clip (silences included) it would be lower: the reference is the voice
    whole = _db(np.mean(speech.astype(np.float64) ** 2) / np.mean(noise**2))
    assert whole < snr - 0.5
    assert out.dtype == np.float32 and out.shape == speech.shape


def test_add_noise_uses_given_noise_looped(speech):
    ref = np.sin(2 * np.pi * 1000 * np.arange(800) / SR)  # 50 ms of a 1 kHz tone, looped
    out = degrade.add_noise(speech, snr_db=10.0, noise=ref)
    added = out.astype(np.float64) - speech
    assert np.corrcoef(added[: 4 * 800], np.tile(ref, 4))[0, 1] > 0.999


def test_mix_noise_default_is_unchanged():
    """The cached ``noise20dB`` features depend on this exact stream."""
    y = np.linspace(-0.5, 0.5, 1000, dtype=np.float32)
    power = float(np.mean(np.square(y, dtype=np.float64)))
    expected = (y + np.random.default_rng(7).standard_normal(1000) * np.sqrt(power / 100)).astype(np.float32)
    np.testing.assert_array_equal(degrade.mix_noise(y, snr_db=20.0, seed=7), expected)


def test_babble_is_speech_band_and_fluctuates_more_than_white_noise():
    b = degrade.babble_noise(4 * SR, seed=1)
    w = degrade.white_noise(4 * SR, seed=1)
    assert np.mean(b**2) == pytest.approx(1.0)
    assert _band_power(b, 100, 4000) / _band_power(b, 0, SR / 2) > 0.9
    frames = lambda x: np.sqrt(np.mean(x[: len(x) // 320 * 320].reshape(-1, 320) ** 2, axis=1))  # noqa: E731
    cv = lambda e: np.std(e) / np.mean(e)  # noqa: E731
    assert cv(frames(b)) > 3 * cv(frames(w))
    np.testing.assert_array_equal(b, degrade.babble_noise(4 * SR, seed=1))
    assert not np.array_equal(b, degrade.babble_noise(4 * SR, seed=2))


def test_telephone_keeps_300_to_3400_hz_only():
    x = degrade.white_noise(2 * SR, seed=0).astype(np.float32) * 0.1
    y = degrade.telephone(x, sr=SR, mulaw=False)
    assert len(y) == len(x)
    passband = _band_power(y, 500, 3000) / _band_power(x, 500, 3000)
    assert _db(passband) > -1.5
    assert _db(_band_power(y, 4200, 8000) / _band_power(x, 4200, 8000)) < -50  # above 8 kHz Nyquist / 2
    assert _db(_band_power(y, 20, 150) / _band_power(x, 20, 150)) < -25


def test_telephone_mulaw_is_eight_bit_quantisation():
    x = 0.3 * np.sin(2 * np.pi * 1000 * np.arange(SR) / SR).astype(np.float32)
    clean, coded = degrade.telephone(x, mulaw=False), degrade.telephone(x, mulaw=True)
    err = _db(np.mean((coded - clean) ** 2) / np.mean(clean**2))
    assert -45 < err < -25  # G.711 gives about 38 dB SNR on a full-scale tone


def test_gain_is_exact_and_clips_only_on_request(speech):
    np.testing.assert_allclose(degrade.gain(speech, db=-20), speech * 0.1, rtol=1e-6)
    loud = degrade.gain(speech, db=12)
    assert np.max(np.abs(loud)) > 1.0
    assert np.max(np.abs(degrade.gain(speech, db=12, clip=True))) == pytest.approx(1.0)


def _rt60(h: np.ndarray, sr: int) -> float:
    """T20 by Schroeder backward integration: the -5..-25 dB slope, extrapolated to 60 dB."""
    tail = h.copy()
    tail[0] = 0.0  # the decay of the reverberant field only
    edc = np.cumsum(tail[::-1] ** 2)[::-1]
    edc_db = 10 * np.log10(edc / edc[0])
    i5, i25 = np.argmax(edc_db <= -5), np.argmax(edc_db <= -25)
    return 3 * (i25 - i5) / sr


@pytest.mark.parametrize("rt60", [0.3, 0.8])
def test_room_impulse_response_decays_in_rt60(rt60):
    h = degrade.room_impulse_response(rt60, sr=SR, drr_db=0.0, seed=0)
    assert _rt60(h, SR) == pytest.approx(rt60, rel=0.1)
    assert _db(h[0] ** 2 / np.sum(h[1:] ** 2)) == pytest.approx(0.0, abs=0.01)


def test_reverb_adds_a_tail_and_keeps_level(speech):
    out = degrade.reverb(speech, sr=SR, rt60=0.5)
    h = degrade.room_impulse_response(0.5, sr=SR)
    assert len(out) == len(speech) + len(h) - 1
    assert degrade.voiced_power(out) == pytest.approx(degrade.voiced_power(speech), rel=1e-3)
    assert np.abs(out[len(speech):len(speech) + 800]).max() > 1e-3  # the room rings after the speech


@needs_ffmpeg
@pytest.mark.parametrize("name,bitrate", [("opus", 8), ("mp3", 16)])
def test_codec_round_trip_decodes_close_in_length_and_content(speech, name, bitrate):
    out = degrade.codec(speech, sr=SR, codec=name, bitrate=bitrate)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert abs(len(out) - len(speech)) <= 1152  # at most one MP3 frame
    n = min(len(out), len(speech))
    s_in, s_out = np.abs(np.fft.rfft(speech[:n])), np.abs(np.fft.rfft(out[:n]))
    f = np.fft.rfftfreq(n, 1 / SR)
    band = (f > 100) & (f < 3000)
    assert np.corrcoef(np.log1p(s_in[band]), np.log1p(s_out[band]))[0, 1] > 0.8
    assert not np.allclose(out[:n], speech[:n], atol=1e-3)  # it is lossy


@needs_ffmpeg
def test_lower_bitrate_loses_more(speech):
    def err(b):
        out = degrade.codec(speech, sr=SR, codec="mp3", bitrate=b)
        n = min(len(out), len(speech))
        return np.mean((np.abs(np.fft.rfft(out[:n])) - np.abs(np.fft.rfft(speech[:n]))) ** 2)

    assert err(8) > 2 * err(64)


@needs_ffmpeg
def test_codec_timeout_and_bad_arguments(speech, monkeypatch):
    with pytest.raises(ValueError, match="bitrate"):
        degrade.codec(speech, codec="mp3", bitrate=7)
    with pytest.raises(ValueError, match="Unknown codec"):
        degrade.codec(speech, codec="aac", bitrate=16)
    monkeypatch.setattr(degrade, "CODEC_TIMEOUT_S", 1e-4)
    with pytest.raises(AudioError, match="longer than"):
        degrade.codec(speech, codec="opus", bitrate=8)


def test_codec_without_ffmpeg_says_so(speech, monkeypatch):
    monkeypatch.setattr(degrade.shutil, "which", lambda name: None)
    with pytest.raises(AudioError, match="needs ffmpeg"):
        degrade.codec(speech, codec="opus", bitrate=8)


@pytest.mark.parametrize("name,expected", [
    ("white10dB", ("noise", ("white", 10.0))), ("babble5dB", ("noise", ("babble", 5.0))),
    ("telephone", ("telephone", ())), ("opus@8k", ("codec", ("opus", 8))), ("mp3@16k", ("codec", ("mp3", 16))),
    ("reverb0.5s", ("reverb", (0.5,))), ("gain-20dB", ("gain", (-20.0,))), ("gain+10dB", ("gain", (10.0,))),
    ("degraded2", ("chain", (2,))), ("pitch+2", None), ("noise20dB", None), ("original", None), ("whiteXdB", None),
])
def test_parse_variant(name, expected):
    assert degrade.parse_variant(name) == expected
    assert augment.is_degradation(name) == (expected is not None)


def test_every_named_condition_runs_through_apply_variant(speech):
    names = [n for n in degrade.TEST_CONDITIONS + degrade.TRAINING_VARIANTS
             if degrade.parse_variant(n)[0] != "codec" or shutil.which("ffmpeg")]
    for name in names:
        out = augment.apply_variant(speech, name, sr=SR, key="clip-a")
        assert out.dtype == np.float32 and np.isfinite(out).all() and len(out) > 0.9 * len(speech), name
        np.testing.assert_array_equal(out, augment.apply_variant(speech, name, sr=SR, key="clip-a"))
    a = augment.apply_variant(speech, "white10dB", sr=SR, key="clip-a")
    b = augment.apply_variant(speech, "white10dB", sr=SR, key="clip-b")
    assert not np.array_equal(a, b)  # seeded per clip
    with pytest.raises(ValueError, match="degradation such as"):
        augment.apply_variant(speech, "vinyl", sr=SR)


def test_random_chains_vary_and_are_ordered_like_sound():
    chains = [degrade.random_chain(s) for s in range(200)]
    assert len({tuple(c) for c in chains}) > 100
    order = ["reverb", "noise", "gain", "telephone", "codec"]
    for c in chains:
        kinds = [degrade.parse_variant(step)[0] for step in c]
        assert kinds == sorted(kinds, key=order.index)
        assert "gain" in kinds


def test_map_corpus_degrades_before_trimming(tmp_path, speech):
    """Noise fills the pauses, so trimming after it keeps them; augmentations see the trimmed clip."""
    import soundfile as sf

    from ser.features.handcrafted import map_corpus

    path = tmp_path / "clip.wav"
    sf.write(path, np.concatenate([np.zeros(SR, np.float32), speech, np.zeros(SR, np.float32)]), SR)
    rows, _ = map_corpus([str(path)], len, key="len", subdir="x", variants=("original", "noise20dB", "white0dB"),
                         n_jobs=1, cache=False, progress=False)
    n_orig, n_aug, n_deg = (int(np.asarray(r)) for r in rows[0])
    assert n_aug == n_orig < len(speech)
    assert n_deg > len(speech) + 1.5 * SR
