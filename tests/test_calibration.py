"""Temperature scaling: fixes an over-confident classifier, never moves the arg-max; ECE; OOF folds."""

from __future__ import annotations

import numpy as np
import pytest

from ser.models import calibration as cal


def _synthetic(n: int, *, k: int = 6, sharpen: float = 3.0, seed: int = 0):
    """Labels drawn from calibrated probabilities; the classifier reports them sharpened."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.2, size=(n, k))
    true_p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=p) for p in true_p])
    over = np.exp(sharpen * logits)
    return true_p, over / over.sum(axis=1, keepdims=True), y


def test_temperature_scaling_fixes_an_overconfident_classifier():
    _, fit_p, fit_y = _synthetic(3000, seed=1)
    true_p, test_p, test_y = _synthetic(3000, seed=2)
    t = cal.fit_temperature(fit_p, fit_y)
    assert t == pytest.approx(3.0, rel=0.1)  # the sharpening factor is recovered
    before = cal.expected_calibration_error(test_p, test_y)
    after = cal.expected_calibration_error(cal.apply_temperature(test_p, t), test_y)
    assert before > 0.15
    assert after < 0.03 and after < before / 4
    np.testing.assert_array_equal(cal.apply_temperature(test_p, t).argmax(axis=1), test_p.argmax(axis=1))


def test_an_underconfident_classifier_gets_t_below_one():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1.5, size=(2000, 4))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(4, p=q) for q in p])
    soft = np.exp(logits / 2.5)
    assert cal.fit_temperature(soft / soft.sum(1, keepdims=True), y) == pytest.approx(1 / 2.5, rel=0.15)


@pytest.mark.parametrize("t", [0.2, 1.0, 3.0, 19.0])
def test_apply_temperature_keeps_argmax_and_sums_to_one(t):
    p = np.random.default_rng(3).dirichlet(np.ones(8), size=200)
    q = cal.apply_temperature(p, t)
    np.testing.assert_allclose(q.sum(axis=1), 1.0)
    np.testing.assert_array_equal(q.argmax(axis=1), p.argmax(axis=1))
    if t == 1.0:
        np.testing.assert_allclose(q, p, atol=1e-12)
    # one row (a single prediction) works too
    np.testing.assert_allclose(cal.apply_temperature(p[0], t), q[0])


def test_apply_temperature_survives_zero_probabilities():
    q = cal.apply_temperature(np.array([[1.0, 0.0, 0.0]]), 2.0)
    assert np.isfinite(q).all() and q[0, 0] > 0.99


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_bad_temperature_raises(bad):
    with pytest.raises(ValueError, match="temperature"):
        cal.apply_temperature(np.array([[0.5, 0.5]]), bad)


def test_ece_is_zero_for_a_perfectly_calibrated_binned_classifier_and_counts_add_up():
    # 100 predictions at 0.8 confidence, 80 right: accuracy equals confidence exactly
    p = np.tile([0.8, 0.2], (100, 1))
    y = np.array([0] * 80 + [1] * 20)
    assert cal.expected_calibration_error(p, y) == pytest.approx(0.0)
    y_bad = np.array([0] * 50 + [1] * 50)
    assert cal.expected_calibration_error(p, y_bad) == pytest.approx(0.3)
    rows = cal.reliability_diagram(p, y, n_bins=10)
    assert sum(r["count"] for r in rows) == 100
    (full,) = [r for r in rows if r["count"]]
    assert (full["lower"], full["upper"]) == pytest.approx((0.7, 0.8)) and full["accuracy"] == 0.8


def test_fit_temperature_rejects_mismatched_input():
    with pytest.raises(ValueError, match="Expected proba"):
        cal.fit_temperature(np.ones((3, 2)) / 2, [0, 1])


def test_out_of_fold_proba_never_trains_on_the_rows_it_predicts():
    groups = np.repeat(["a", "b", "c", "d"], 5)
    seen = []

    def fit_predict(train, test):
        assert not set(groups[train]) & set(groups[test])  # speakers never on both sides
        seen.append(test)
        return np.full((len(test), 2), 0.5)

    p = cal.out_of_fold_proba(fit_predict, groups, n_splits=3)
    assert p.shape == (20, 2)
    assert sorted(np.concatenate(seen).tolist()) == list(range(20))
    with pytest.raises(ValueError, match="2 speakers"):
        cal.out_of_fold_proba(fit_predict, ["a"] * 4)


def test_calibration_summary_reports_before_and_after():
    _, p, y = _synthetic(1000, seed=4)
    s = cal.calibration_summary(p, y, 3.0)
    assert s["ece_after"] < s["ece_before"] and s["nll_after"] < s["nll_before"]
    assert s["mean_confidence_after"] < s["mean_confidence_before"]


def test_mlp_recognizer_applies_its_temperature_and_saves_it(tmp_path):
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from ser.features.handcrafted import feature_names
    from ser.models.mlp import MLPRecognizer
    from ser.models.base import Recognizer

    rng = np.random.default_rng(0)
    nf = len(feature_names())
    X = rng.normal(size=(60, nf))
    y = np.array(["sad", "happy", "angry"] * 20)
    X[y == "angry", :5] += 3
    pipe = Pipeline([("scaler", StandardScaler()), ("mlp", MLPClassifier((8,), max_iter=200, random_state=0))])
    import warnings

    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(1):  # BLAS threads only fight on 2 busy cores
        warnings.simplefilter("ignore")
        pipe.fit(X, y)
    labels = ["happy", "sad", "angry"]
    raw = MLPRecognizer(pipe, labels=labels)
    hot = MLPRecognizer(pipe, labels=labels, temperature=4.0)
    p_raw, p_hot = raw.proba_from_features(X[:5]), hot.proba_from_features(X[:5])
    np.testing.assert_allclose(p_hot, cal.apply_temperature(p_raw, 4.0))
    assert (p_hot.max(axis=1) < p_raw.max(axis=1)).all()
    assert "temperature" not in raw.config() and hot.config()["temperature"] == 4.0
    folder = hot.save_pretrained(tmp_path / "mlp", metadata={"metrics": {}})
    back = Recognizer.from_pretrained(folder)
    assert back.temperature == 4.0
    np.testing.assert_allclose(back.proba_from_features(X[:5]), p_hot)


def test_reliability_figure_draws_both_curves():
    from ser.plots import reliability_figure

    _, p, y = _synthetic(500, seed=5)
    fig = reliability_figure(cal.reliability_diagram(p, y), cal.reliability_diagram(cal.apply_temperature(p, 3), y),
                             ece_before=0.2, ece_after=0.01)
    names = [t.name for t in fig.data]
    assert names[0] == "perfect calibration" and "raw (ECE 0.200)" in names and "calibrated (ECE 0.010)" in names
    assert all(c is not None for c in fig.data[1].x)  # empty bins are skipped
