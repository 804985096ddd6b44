"""ser.vad: frame rules, segment invariants, gain invariance, real sentences found where they are."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_model import long_recording, ravdess_files

from ser.audio import vad
from ser.audio.io import load_audio
from ser.errors import AudioError

SR = 16_000
METHODS = ["energy"] + (["webrtc"] if vad.webrtc_available() else [])


def bursts(spans, *, total_s: float, noise: float = 1e-4, seed: int = 0) -> np.ndarray:
    """Voiced-like bursts (a 150 Hz harmonic tone, amplitude-modulated) at ``spans`` over faint noise."""
    rng = np.random.default_rng(seed)
    y = noise * rng.standard_normal(int(total_s * SR))
    for a, b in spans:
        t = np.arange(int((b - a) * SR)) / SR
        tone = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 8))
        y[int(a * SR): int(a * SR) + len(t)] += 0.2 * tone * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
    return y.astype(np.float32)


def check_invariants(segments, *, duration_s, min_s=vad.MIN_SEGMENT_S, max_s=vad.MAX_SEGMENT_S):
    for a, b in segments:
        assert 0 <= a < b <= duration_s + 1e-6
        assert b - a >= min_s - 2e-3
        if max_s is not None:
            assert b - a <= max_s + 2e-3
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(segments, segments[1:])), segments


def test_energy_rule_finds_bursts_at_their_place():
    y = bursts([(1.0, 2.5), (4.0, 5.0)], total_s=6.0)
    segs = vad.voiced_segments(y, sr=SR, method="energy")
    assert len(segs) == 2
    for (a, b), (ta, tb) in zip(segs, [(1.0, 2.5), (4.0, 5.0)]):
        assert a == pytest.approx(ta - vad.PAD_S, abs=0.04) and b == pytest.approx(tb + vad.PAD_S, abs=0.04)
    check_invariants(segs, duration_s=6.0)


@pytest.mark.parametrize("method", METHODS)
def test_silence_and_empty_give_no_segments(method):
    assert vad.voiced_segments(np.zeros(3 * SR, np.float32), sr=SR, method=method) == []
    assert vad.voiced_segments(np.zeros(0, np.float32), sr=SR, method=method) == []
    assert vad.voiced_segments(np.full(SR, 1e-6, np.float32), sr=SR, method=method) == []


def test_short_gaps_merge_long_gaps_split_short_blips_drop():
    y = bursts([(1.0, 2.0), (2.2, 3.0), (4.5, 5.5), (7.0, 7.2)], total_s=8.0)
    segs = vad.voiced_segments(y, sr=SR, method="energy", max_segment_s=None)
    assert len(segs) == 2  # 0.2 s pause merged; the 0.2 s blip is too short
    assert segs[0][0] < 1.0 and segs[0][1] > 3.0 and 4.3 < segs[1][0] < 4.5
    merged_less = vad.voiced_segments(y, sr=SR, method="energy", merge_gap_s=0.1, pad_s=0.05,
                                      max_segment_s=None)
    assert len(merged_less) == 3  # (with 0.1 s of padding on each side the two would touch again)


def test_long_segments_become_equal_windows():
    y = bursts([(0.5, 10.5)], total_s=11.0)
    whole = vad.voiced_segments(y, sr=SR, method="energy", max_segment_s=None)
    assert len(whole) == 1
    windows = vad.voiced_segments(y, sr=SR, method="energy", max_segment_s=4.0)
    lengths = [b - a for a, b in windows]
    assert len(windows) == 3 and max(lengths) - min(lengths) < 2e-3
    assert windows[0][0] == whole[0][0] and windows[-1][1] == whole[0][1]
    assert all(b1 == a2 for (_, b1), (a2, _) in zip(windows, windows[1:]))  # contiguous, no overlap
    assert vad.split_long([(0.0, 8.0)], max_segment_s=4.0) == [(0.0, 4.0), (4.0, 8.0)]


def test_frames_to_segments_merges_pads_and_joins():
    speech = np.zeros(100, bool)
    speech[10:30] = speech[33:40] = True  # gap of 3 frames = 0.09 s: merged
    speech[60:80] = True
    segs = vad.frames_to_segments(speech, frame_s=0.03, duration_s=3.0, merge_gap_s=0.1, pad_s=0.1,
                                  min_segment_s=0.5)
    assert segs == [(0.2, 1.3), (1.7, 2.5)]
    joined = vad.frames_to_segments(speech, frame_s=0.03, duration_s=3.0, merge_gap_s=0.1, pad_s=0.4,
                                    min_segment_s=0.5)
    assert joined == [(0.0, 2.8)]  # padding made them touch: one segment, clipped at 0


@pytest.mark.parametrize("method", METHODS)
def test_ravdess_sentences_are_found_one_segment_each_whatever_the_gain(ravdess_dir, method):
    files = ravdess_files(ravdess_dir, "03", 6)
    y, spans = long_recording(files, gaps_s=[1.0, 0.6, 2.0, 0.8, 1.5, 0.5])
    segs = vad.voiced_segments(y, sr=SR, method=method, max_segment_s=None)
    assert len(segs) == len(files), (segs, spans)
    check_invariants(segs, duration_s=len(y) / SR, max_s=None)
    for f, (a, b), (sa, sb) in zip(files, segs, spans):
        assert sa - 0.05 <= a and b <= sb + 0.25  # inside its file (WebRTC's hangover may add 0.15 s)
        voice = len(load_audio(f)) / SR  # the file's voice, trimmed as for training
        assert b - a >= 0.8 * voice, (f.name, a, b, voice)
    assert vad.voiced_segments(0.03 * y, sr=SR, method=method, max_segment_s=None) == segs
    resampled = vad.voiced_segments(load_audio((SR, y), sr=8000, trim=False), sr=8000, method=method,
                                    max_segment_s=None)
    assert len(resampled) == len(segs)


def test_other_rates_work_and_auto_falls_back_to_energy(monkeypatch):
    y = bursts([(1.0, 2.5)], total_s=4.0)
    y22 = load_audio((SR, y), sr=22050, trim=False)
    for method in METHODS:
        segs = vad.voiced_segments(y22, sr=22050, method=method)
        assert len(segs) == 1 and segs[0][0] == pytest.approx(0.9, abs=0.1)
    monkeypatch.setattr(vad, "webrtc_available", lambda: False)
    assert vad.default_method() == "energy"
    assert vad.voiced_segments(y, sr=SR, method="auto") == vad.voiced_segments(y, sr=SR, method="energy")


@pytest.mark.parametrize("kwargs, match", [
    (dict(method="neural"), "method"),
    (dict(frame_ms=25), "frame_ms"),
    (dict(aggressiveness=5, method="webrtc"), "aggressiveness"),
    (dict(max_segment_s=0.6), "max_segment_s"),
    (dict(pad_s=-1.0), "pad_s"),
    (dict(sr=0), "sr"),
])
def test_bad_parameters_say_what_is_accepted(kwargs, match):
    if kwargs.get("method") == "webrtc" and not vad.webrtc_available():
        pytest.skip("webrtcvad not installed")
    with pytest.raises(ValueError, match=match):
        vad.voiced_segments(bursts([(0.5, 1.5)], total_s=2.0), **{"sr": SR, **kwargs})


@pytest.mark.parametrize("y, match", [
    (np.zeros((SR, 2), np.float32), "mono"),
    (np.zeros(SR, np.int16), "float"),
    (np.array([0.0, np.nan] * SR, np.float32), "NaN"),
])
def test_bad_audio_is_an_audio_error(y, match):
    with pytest.raises(AudioError, match=match):
        vad.voiced_segments(y, sr=SR)
