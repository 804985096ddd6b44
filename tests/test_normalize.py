"""Per-speaker standardisation: each speaker's rows get zero mean and unit spread, labels unused."""

from __future__ import annotations

import numpy as np
import pytest

from ser.normalize import speaker_standardize


def test_each_speaker_is_standardised_with_its_own_statistics():
    rng = np.random.default_rng(0)
    a = rng.normal(5.0, 2.0, size=(40, 3))
    b = rng.normal(-3.0, 0.5, size=(25, 3))
    X = np.vstack([a, b])
    groups = ["a"] * 40 + ["b"] * 25
    Z = speaker_standardize(X, groups)
    for rows in (slice(0, 40), slice(40, 65)):
        np.testing.assert_allclose(Z[rows].mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(Z[rows].std(axis=0), 1, atol=1e-4)
    # a speaker's result depends on that speaker's rows only (order and others irrelevant)
    np.testing.assert_allclose(speaker_standardize(b, ["b"] * 25), Z[40:], atol=1e-6)


def test_a_speaker_offset_disappears_but_within_speaker_differences_stay():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    Z = speaker_standardize(np.vstack([x, x + 100.0]), ["s1"] * 4 + ["s2"] * 4)
    np.testing.assert_allclose(Z[:4], Z[4:], atol=1e-6)
    assert list(np.argsort(Z[:4, 0])) == [0, 1, 2, 3]


def test_mean_only_and_constant_features():
    X = np.array([[1.0, 7.0], [3.0, 7.0]])
    np.testing.assert_allclose(speaker_standardize(X, ["s", "s"], scale=False), [[-1, 0], [1, 0]])
    assert np.isfinite(speaker_standardize(X, ["s", "s"])).all()


def test_too_few_clips_and_shape_errors():
    with pytest.raises(ValueError, match="at least 2 clips"):
        speaker_standardize(np.ones((3, 2)), ["a", "a", "b"])
    with pytest.raises(ValueError, match="Expected X"):
        speaker_standardize(np.ones((3, 2)), ["a", "a"])
