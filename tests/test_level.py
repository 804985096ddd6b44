"""ser.audio.level: the active-speech level ignores pauses and follows gain exactly."""

from __future__ import annotations

import numpy as np
import pytest

from ser.audio.level import TARGET_DBFS, active_level_db, normalize_level
from ser.errors import AudioError

SR = 16_000


def _tone(seconds: float, amplitude: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_level_of_a_sine_is_its_rms_and_pauses_do_not_lower_it():
    y = _tone(1.0, 0.1)
    expected = 20 * np.log10(0.1 / np.sqrt(2))
    assert active_level_db(y) == pytest.approx(expected, abs=0.01)
    with_pauses = np.concatenate([np.zeros(SR, np.float32), y, np.zeros(2 * SR, np.float32)])
    assert active_level_db(with_pauses) == pytest.approx(expected, abs=0.15)  # two edge frames


@pytest.mark.parametrize("gain_db", [-40.0, -12.0, 0.0, 15.0])
def test_normalised_level_is_the_target_whatever_the_gain(gain_db, voiced_signal):
    y = voiced_signal * np.float32(10 ** (gain_db / 20))
    z = normalize_level(y)
    assert active_level_db(z) == pytest.approx(TARGET_DBFS, abs=1e-3)
    reference = normalize_level(voiced_signal)
    np.testing.assert_allclose(z, reference, rtol=1e-4, atol=1e-7)  # only the scale changed


def test_silence_is_left_alone_and_bad_input_is_an_audio_error():
    silent = np.zeros(SR, np.float32)
    assert active_level_db(silent) < -150
    np.testing.assert_array_equal(normalize_level(silent), silent)
    with pytest.raises(AudioError, match="mono"):
        active_level_db(np.zeros((2, 100)))
    with pytest.raises(AudioError):
        active_level_db(np.zeros(0))
