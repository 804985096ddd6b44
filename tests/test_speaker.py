"""Per-speaker standardisation: each speaker's rows get zero mean and unit spread, labels unused."""

from __future__ import annotations

import numpy as np
import pytest

from ser.models.speaker import speaker_standardize


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


def test_predict_speaker_batch_maps_the_batch_onto_the_training_statistics():
    """A raw-feature model gets z-scores mapped onto its scaler's mean and scale; order is kept."""
    import warnings

    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    try:
        from audio_cases import speech_like
    except ImportError:  # pragma: no cover
        from tests.audio_cases import speech_like
    from ser.features.handcrafted import feature_names
    from ser.models.speaker import predict_speaker_batch
    from ser.models.mlp import MLPRecognizer

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, len(feature_names())))
    y = np.array(["sad", "happy"] * 30)
    pipe = Pipeline([("scaler", StandardScaler()), ("mlp", MLPClassifier((8,), max_iter=50, random_state=0))])
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        pipe.fit(X, y)
    rec = MLPRecognizer(pipe, labels=["happy", "sad"], temperature=2.0)
    clips = [(16000, speech_like(1.0, f0=f0)) for f0 in (110.0, 140.0, 180.0)]
    preds = predict_speaker_batch(rec, clips)
    feats = np.stack([rec.features_of(rec.load(c)) for c in clips])
    z = (feats - feats.mean(0)) / (feats.std(0) + 1e-6)
    expected = rec.proba_from_features(z * pipe.named_steps["scaler"].scale_ + pipe.named_steps["scaler"].mean_)
    for p, e in zip(preds, expected):
        assert [p.probabilities["happy"], p.probabilities["sad"]] == pytest.approx(e.tolist(), abs=1e-4)  # float32 z-scores
        assert "transductive" in p.warnings[-1]
    rec.metadata = {"preprocessing": {"speaker_norm": True}}  # a model trained on z-scores gets them raw
    direct = predict_speaker_batch(rec, clips)
    assert direct[0].probabilities["happy"] == pytest.approx(float(rec.proba_from_features(z)[0, 0]), abs=1e-4)
    with pytest.raises(ValueError, match="at least 2 clips"):
        predict_speaker_batch(rec, clips[:1])
