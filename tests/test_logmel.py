"""The 128 x 128 log-mel contract: shapes, value range, padding, windows of long clips."""

from __future__ import annotations

import numpy as np
import pytest

from ser.features.logmel import SpectrogramConfig, logmel, logmel_image, logmel_windows

SR = 16_000
CFG = SpectrogramConfig()


def tone(seconds: float, *, f0: float = 220.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(seconds * SR))) / SR
    return (amp * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))).astype(np.float32)


def expected_windows(n_samples: int, cfg: SpectrogramConfig = CFG) -> int:
    """Windows a clip of ``n_samples`` gets: ceil((frames - 128) / 64) + 1, one when short."""
    frames = 1 + max(n_samples, cfg.window_samples) // cfg.hop_length
    step = cfg.n_frames // 2
    return 1 + int(np.ceil(max(frames - cfg.n_frames, 0) / step))


def test_window_constants():
    assert CFG.window_samples == 127 * 320 == 40_640
    assert CFG.window_s == pytest.approx(2.54)


def test_silence_is_the_floor_everywhere():
    X = logmel_windows(np.zeros(SR, np.float32))
    assert X.shape == (1, 128, 128) and X.dtype == np.float32
    assert np.all(X == -1.0)  # nothing above the -80 dB floor, and no NaN from log(0)


@pytest.mark.parametrize("seconds", [0.05, 0.5, 1.6, 2.54])
def test_short_clip_is_one_centred_padded_image(seconds):
    y = tone(seconds)
    X = logmel_windows(y)
    assert X.shape == (1, 128, 128) and X.dtype == np.float32
    assert np.all(np.isfinite(X)) and X.min() >= -1.0 and X.max() == pytest.approx(1.0)  # loudest bin = 0 dB
    active = np.flatnonzero(X[0].max(axis=0) > -1.0)
    content = len(y) / CFG.hop_length
    # padding is split equally, so the voiced frames sit in the middle (within the STFT's reach)
    assert abs((active[0] + active[-1]) / 2 - 63.5) <= 2
    assert len(active) == pytest.approx(content, abs=6)
    if seconds < 2:
        assert np.all(X[0, :, :5] == -1.0) and np.all(X[0, :, -5:] == -1.0)


@pytest.mark.parametrize("seconds", [2.6, 5.0, 10.3])
def test_long_clip_is_cut_into_half_overlapping_windows(seconds):
    y = tone(seconds) * np.linspace(0.2, 1.0, int(round(seconds * SR)), dtype=np.float32)
    X = logmel_windows(y)
    S = logmel(y)
    assert X.shape == (expected_windows(len(y)), 128, 128)
    for w in range(len(X) - 1):
        if (w + 1) * 64 + 128 <= S.shape[1]:  # regular windows share half their frames
            assert np.array_equal(X[w][:, 64:], X[w + 1][:, :64])
    assert np.array_equal(X[0], S[:, :128])
    assert np.array_equal(X[-1], S[:, -128:])  # the tail is covered
    assert np.array_equal(logmel_image(y), X[len(X) // 2])


def test_values_are_gain_invariant_and_in_range():
    y = tone(1.0)
    a, b = logmel(y), logmel(y * 0.01)
    assert a.shape == (128, 1 + len(y) // 320)
    assert a.min() >= -1.0 and a.max() <= 1.0
    assert np.allclose(a, b, atol=1e-4)


def test_frequency_axis_is_low_to_high():
    lo, hi = logmel_image(tone(1.0, f0=150.0)), logmel_image(tone(1.0, f0=2500.0))
    assert np.argmax(lo.mean(axis=1)) < 30 < np.argmax(hi.mean(axis=1))
