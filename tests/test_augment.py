"""ser/audio/augment.py: the training-side copies do what their names say (pitch +2 semitones at the
same length, 1.1x faster at the same pitch, white noise at 20 dB SNR), deterministically per clip;
the original passes through; unknown names are refused. (Degradations through ``apply_variant``:
tests/test_degrade.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from ser.audio import augment
from ser.audio.augment import ORIGINAL, VARIANTS, apply_variant, is_degradation
from ser.audio.degrade import TRAINING_VARIANTS

SR = 16_000


def tone(f0: float = 200.0, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * f0 * t)).astype(np.float32)


def peak_hz(y: np.ndarray) -> float:
    """Frequency of the strongest FFT bin (Hann window, zero-padded to 1/4 Hz bins)."""
    n = 4 * SR
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y)), n=n))
    return float(np.fft.rfftfreq(n, 1 / SR)[spectrum.argmax()])


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean
    return float(10 * np.log10(np.mean(np.square(clean, dtype=np.float64)) / np.mean(noise ** 2)))


def test_the_variants_are_the_named_augmentations_and_the_robust_copies_are_degradations():
    assert VARIANTS == ("pitch+2", "stretch1.1", "noise20dB") and ORIGINAL not in VARIANTS
    assert not any(is_degradation(v) for v in (ORIGINAL, *VARIANTS))
    assert TRAINING_VARIANTS and all(is_degradation(v) for v in TRAINING_VARIANTS)  # applied before trimming


def test_original_passes_through_untouched():
    y = tone()
    assert apply_variant(y, ORIGINAL) is y


def test_pitch_shift_raises_the_pitch_two_semitones_at_the_same_length():
    y = tone(200.0)
    out = augment.pitch_shift(y, n_steps=2.0)
    assert out.dtype == np.float32 and len(out) == len(y)
    assert peak_hz(out) == pytest.approx(200.0 * 2 ** (2 / 12), abs=2.0)  # 224.5 Hz
    assert np.array_equal(apply_variant(y, "pitch+2"), out)
    assert peak_hz(augment.pitch_shift(y, n_steps=-12.0)) == pytest.approx(100.0, abs=2.0)


def test_time_stretch_shortens_by_the_rate_and_keeps_the_pitch():
    y = tone(200.0, seconds=2.0)
    out = augment.time_stretch(y, rate=1.1)
    assert out.dtype == np.float32 and len(out) == pytest.approx(len(y) / 1.1, rel=0.01)
    assert peak_hz(out) == pytest.approx(200.0, abs=1.0)
    assert np.array_equal(apply_variant(y, "stretch1.1"), out)
    assert len(augment.time_stretch(y, rate=0.5)) == pytest.approx(2 * len(y), rel=0.01)


def test_noise_copy_is_at_20_db_snr_and_seeded_by_the_clip():
    y = tone(seconds=2.0)
    a = apply_variant(y, "noise20dB", key="clip-a")
    assert a.shape == y.shape and snr_db(y, a) == pytest.approx(20.0, abs=0.5)
    assert np.array_equal(a, apply_variant(y, "noise20dB", key="clip-a"))  # cacheable: same clip, same copy
    b = apply_variant(y, "noise20dB", key="clip-b")
    assert not np.allclose(a, b) and snr_db(y, b) == pytest.approx(20.0, abs=0.5)
    noise = a.astype(np.float64) - y
    assert abs(np.corrcoef(noise, y)[0, 1]) < 0.05  # white noise added, the voice untouched


@pytest.mark.parametrize("name", ["pitch+3", "noise", "reverse", ""])
def test_an_unknown_variant_is_refused_with_the_known_names(name):
    with pytest.raises(ValueError, match="Unknown augmentation") as e:
        apply_variant(tone(), name)
    assert all(v in str(e.value) for v in VARIANTS)
