"""Explanations: Shapley family attributions add up and rank correctly; occlusion finds the patch."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest

from ser.models import explain as ex

GROUPS = {"a": np.array([0, 1]), "b": np.array([2, 3]), "c": np.array([4, 5])}
MEAN = np.array([1.0, 1.0, 0.0, 0.0, 2.0, 2.0])


class LinearToy:
    """p(yes) = 0.5 + 0.1 * (sum of group a offsets) - 0.05 * (sum of group b offsets); c is ignored."""

    labels = ["yes", "no"]

    def __init__(self):
        self.pipeline = SimpleNamespace(named_steps={"scaler": SimpleNamespace(mean_=MEAN)})
        self.calls = 0

    def proba_from_features(self, X):
        self.calls += 1
        d = np.asarray(X) - MEAN
        p = 0.5 + 0.1 * d[:, :2].sum(1) - 0.05 * d[:, 2:4].sum(1)
        return np.stack([p, 1 - p], axis=1)


class SoftmaxToy(LinearToy):
    """A non-linear model with an interaction between a and b, three classes."""

    labels = ["x", "y", "z"]

    def proba_from_features(self, X):
        d = np.asarray(X) - MEAN
        z = np.stack([d[:, 0] * d[:, 2], d[:, 1] + d[:, 4], -d[:, 3]], axis=1)
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)


def test_shapley_recovers_the_exact_contributions_of_a_linear_model():
    x = MEAN + np.array([1.0, 0.5, 2.0, 0.0, 9.0, 9.0])
    out = ex.feature_attribution(LinearToy(), x, groups=GROUPS)
    assert out["target"] == "yes"
    assert out["attributions"]["a"] == pytest.approx(0.15)
    assert out["attributions"]["b"] == pytest.approx(-0.10)
    assert out["attributions"]["c"] == pytest.approx(0.0, abs=1e-12)  # the model ignores c
    assert list(out["attributions"]) == ["a", "c", "b"]  # largest push first
    assert out["probability"] == pytest.approx(0.55) and out["baseline_probability"] == pytest.approx(0.5)


def test_shapley_values_sum_to_the_change_from_the_baseline_for_every_class():
    x = MEAN + np.random.default_rng(0).normal(size=6)
    toy = SoftmaxToy()
    out = ex.feature_attribution(toy, x, groups=GROUPS)
    p = toy.proba_from_features(x[None])[0]
    p0 = toy.proba_from_features(MEAN[None])[0]
    for k, lab in enumerate(toy.labels):
        assert sum(out["by_class"][lab].values()) == pytest.approx(p[k] - p0[k], abs=1e-12)
    assert out["target"] == toy.labels[int(np.argmax(p))]


def test_occlusion_is_leave_one_family_out():
    x = MEAN + np.array([1.0, 0.5, 2.0, 0.0, 9.0, 9.0])
    toy = SoftmaxToy()
    out = ex.feature_attribution(toy, x, groups=GROUPS, method="occlusion", target="y")
    full = toy.proba_from_features(x[None])[0, 1]
    for name, cols in GROUPS.items():
        xr = x.copy()
        xr[cols] = MEAN[cols]
        assert out["attributions"][name] == pytest.approx(full - toy.proba_from_features(xr[None])[0, 1])


def test_one_batch_and_bad_arguments():
    toy = LinearToy()
    ex.feature_attribution(toy, MEAN, groups=GROUPS)
    assert toy.calls == 1  # all 2**3 coalitions in one call
    with pytest.raises(ValueError, match="method"):
        ex.feature_attribution(toy, MEAN, groups=GROUPS, method="lime")
    with pytest.raises(ValueError, match="features"):
        ex.feature_attribution(toy, MEAN[:4], groups=GROUPS)


def test_real_mlp_recognizer_is_explained_fast(tmp_path):
    """The shipped layout: 9 feature families, a scaler+MLP pipeline, calibrated probabilities."""
    import warnings

    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from ser.features.handcrafted import feature_groups, feature_names
    from ser.models.mlp import MLPRecognizer

    rng = np.random.default_rng(1)
    groups = feature_groups()
    X = rng.normal(size=(300, len(feature_names())))
    y = np.array(["angry", "sad", "happy"] * 100)
    X[np.ix_(y == "angry", groups["pitch"])] += 6.0  # only pitch separates angry
    X[np.ix_(y == "sad", groups["mfcc"])] += 1.0  # and MFCC sad
    pipe = Pipeline([("scaler", StandardScaler()),
                     ("mlp", MLPClassifier((32,), alpha=1.0, max_iter=80, random_state=0))])
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(1):  # BLAS threads only fight on 2 busy cores
        warnings.simplefilter("ignore")
        pipe.fit(X, y)
    rec = MLPRecognizer(pipe, labels=["happy", "sad", "angry"], temperature=1.5)
    # a new clip: average everywhere except an angry pitch and a sad timbre
    x = pipe.named_steps["scaler"].mean_.copy()
    x[groups["pitch"]] += 6.0
    x[groups["mfcc"]] += 0.1
    ex.feature_attribution(rec, x)  # warm-up
    times = []
    for _ in range(5):  # best of 5: other engineers' jobs share these 2 cores
        started = time.perf_counter()
        out = ex.feature_attribution(rec, x)
        times.append(time.perf_counter() - started)
    assert min(times) < 0.05, f"{min(times) * 1000:.0f} ms"
    assert set(out["attributions"]) == set(groups) and len(groups) == 9
    assert out["target"] == "angry"
    ranked = list(out["attributions"])
    assert ranked[0] == "pitch" and ranked[-1] == "mfcc"  # pitch pushed to angry, timbre away
    assert out["attributions"]["pitch"] > 0 > out["attributions"]["mfcc"]
    assert all(out["attributions"][g] == 0 for g in ranked[1:-1])  # families left at the mean
    total = sum(out["attributions"].values())
    assert total == pytest.approx(out["probability"] - out["baseline_probability"], abs=1e-9)
    assert out["probability"] == pytest.approx(rec.proba_from_features(x[None])[0, 2])  # calibrated
    assert ex.explain(rec, np.zeros(16000, np.float32))["kind"] == "features"
    # the first-layer shortcut is exact: same probabilities as pushing every coalition row through
    cols = [groups[n] for n in groups]
    masks = np.random.default_rng(0).random((40, len(cols))) < 0.5
    rows = np.repeat(pipe.named_steps["scaler"].mean_[None, :], len(masks), axis=0)
    for j, c in enumerate(cols):
        rows[np.ix_(masks[:, j], c)] = x[c]
    assert ex._first_layer_shortcut(rec) is not None
    np.testing.assert_allclose(ex._coalition_proba(rec, x, pipe.named_steps["scaler"].mean_, cols, masks),
                               rec.proba_from_features(rows), atol=1e-12)


class ImageToy:
    """A 'CNN' that looks only at mel bands 0-7, frames 16-23 of each window."""

    labels = ["low", "high"]

    def __init__(self, n_windows=1):
        rng = np.random.default_rng(0)
        self.X = rng.uniform(-1, 0, size=(n_windows, 32, 32)).astype(np.float32)
        self.X[:, 0:8, 16:24] = 0.9

    def windows(self, y):
        return self.X

    def proba_from_windows(self, X):
        s = float(np.mean(X[:, 0:8, 16:24]))
        p = 1 / (1 + np.exp(-6 * s))
        return np.array([1 - p, p])


@pytest.mark.parametrize("n_windows", [1, 2])
def test_occlusion_map_finds_the_patch_the_model_uses(n_windows):
    toy = ImageToy(n_windows)
    out = ex.occlusion_map(toy, np.zeros(10), patch=(8, 8))
    assert out["target"] == "high"
    assert out["grid"].shape == (n_windows, 4, 4)
    hot = np.argwhere(out["grid"] > 1e-6)
    assert {(int(i), int(j)) for _, i, j in hot} == {(0, 2)}
    assert np.abs(np.delete(out["grid"].reshape(n_windows, -1), 2, axis=1)).max() == 0
    assert out["image"].shape == out["saliency"].shape == (32, 32 * n_windows)
    assert out["saliency"][0:8, 16:24].min() > 0 and out["saliency"][8:, :].max() == 0


def test_occlusion_arguments_and_dispatch():
    toy = ImageToy()
    with pytest.raises(ValueError, match="fill"):
        ex.occlusion_map(toy, np.zeros(3), fill="noise")
    with pytest.raises(ValueError, match="patch"):
        ex.occlusion_map(toy, np.zeros(3), patch=(64, 8))
    silence = ex.occlusion_map(toy, np.zeros(3), patch=(8, 8), fill="silence")
    assert silence["grid"].max() > 0
    assert ex.explain(toy, np.zeros(3), patch=(8, 8))["kind"] == "occlusion"
    ens = SimpleNamespace(members={"cnn": toy})
    assert ex.explain(ens, np.zeros(3))["members"]["cnn"]["kind"] == "occlusion"
    with pytest.raises(ValueError, match="No explanation"):
        ex.explain(object(), np.zeros(3))


def test_api_form_and_figures():
    import json

    from ser.models.explain import explanation_figure, to_api

    feat = {"kind": "features", **ex.feature_attribution(SoftmaxToy(), MEAN + 1, groups=GROUPS)}
    json.dumps(to_api(feat))
    fig = explanation_figure(feat)
    assert fig.data[0].orientation == "h" and len(fig.data[0].y) == 3
    occ = {"kind": "occlusion", **ex.occlusion_map(ImageToy(), np.zeros(3), patch=(8, 8))}
    api = to_api(occ)
    assert "image" not in api and np.array(api["grid"]).shape == (1, 4, 4)
    json.dumps(api)
    assert len(explanation_figure(occ).data) == 2  # the image and the saliency on top
    ens = to_api({"kind": "ensemble", "members": {"cnn": occ, "mlp": feat}})
    assert "image" not in ens["members"]["cnn"]
    assert explanation_figure({"kind": "ensemble", "members": {"cnn": occ, "mlp": feat}}).data[0].orientation == "h"
