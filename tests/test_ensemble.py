"""The MLP + CNN ensemble: combination of out-of-fold results, prediction, a self-contained folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ser.audio.corpora import Clip
from ser.errors import ModelError
from ser.training.protocols import ProtocolResult
from ser.models.base import Recognizer

SR = 16_000
LABELS = ["neutral", "calm", "happy", "sad"]


def voice(f0: float, seconds: float = 1.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    y = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8)) * (0.6 + 0.4 * np.cos(2 * np.pi * 3 * t))
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def _result(protocol, labels, test_index, proba, y_true) -> ProtocolResult:
    return ProtocolResult(protocol, list(labels), np.asarray(test_index), np.asarray(proba, float),
                          np.asarray(y_true))


def test_combine_results_aligns_rows_and_columns():
    from ser.training.ensemble import combine_results

    clips = [Clip(f"/x/{i}.wav", LABELS[i % 4], f"c_{i // 4}", "male", "c") for i in range(8)]
    rng = np.random.default_rng(0)
    p_mlp = rng.dirichlet(np.ones(4), size=8)
    p_cnn = rng.dirichlet(np.ones(4), size=8)
    y = np.array([i % 4 for i in range(8)])
    mlp = _result("stratified", LABELS, np.arange(8), p_mlp, y)
    # the CNN lists its clips in another order and its columns sorted by name
    perm = rng.permutation(8)
    cols = [LABELS.index(lab) for lab in sorted(LABELS)]
    cnn = _result("stratified", sorted(LABELS), perm, p_cnn[perm][:, cols], y[perm])
    out = combine_results({"mlp": mlp, "cnn": cnn}, {"mlp": 0.25, "cnn": 0.75}, clips)
    assert list(out.test_index) == list(range(8)) and out.labels == LABELS
    assert np.allclose(out.proba, 0.25 * p_mlp + 0.75 * p_cnn)
    assert out.metrics["accuracy"] == pytest.approx(np.mean((0.25 * p_mlp + 0.75 * p_cnn).argmax(1) == y))
    assert set(out.metrics["members"]) == {"mlp", "cnn"} and out.metrics["n_test"] == 8
    other = _result("stratified", LABELS, np.arange(1, 9), p_cnn, y)
    with pytest.raises(ModelError, match="different clips"):
        combine_results({"mlp": mlp, "cnn": other}, {"mlp": 0.5, "cnn": 0.5}, clips + clips[:1])


@pytest.fixture(scope="module")
def members():
    """A real (tiny) MLP and CNN: a fitted Pipeline on random features and an untrained tiny CNN."""
    pytest.importorskip("keras")
    from ser.models.cnn import CNNRecognizer, build_cnn
    from ser.features.handcrafted import feature_names
    from ser.models.mlp import fit_pipeline
    from ser.models.mlp import MLPRecognizer

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, len(feature_names())))
    y = np.array(LABELS * 10)
    mlp = MLPRecognizer(fit_pipeline(X, y, hidden_layer_sizes=(8,), batch_size=16), labels=LABELS)
    cnn = CNNRecognizer(build_cnn((128, 128), 4, filters=(4, 8), seed=0), labels=LABELS)
    return {"mlp": mlp, "cnn": cnn}


def test_predict_proba_is_the_weighted_mean_of_members(members):
    from ser.models.ensemble import EnsembleRecognizer

    ens = EnsembleRecognizer(members, weights={"mlp": 1.0, "cnn": 3.0})
    assert ens.weights == {"mlp": 0.25, "cnn": 0.75}
    y = voice(180.0)
    expected = 0.25 * members["mlp"].predict_proba(y) + 0.75 * members["cnn"].predict_proba(y)
    assert np.allclose(ens.predict_proba(y), expected, atol=1e-9)
    assert ens.predict_array(y).model == "ensemble"


def test_member_temperature_is_undone_and_the_ensemble_applies_its_own(members):
    from ser.models.calibration import apply_temperature
    from ser.models.ensemble import EnsembleRecognizer

    y = voice(180.0)
    raw = EnsembleRecognizer(members).predict_proba(y)
    mlp = members["mlp"]
    try:
        mlp.temperature = 3.0  # a calibrated MLP: softer on its own, raw inside the ensemble
        assert not np.allclose(mlp.predict_proba(y), members["mlp"].pipeline.predict_proba(
            mlp.features_of(y)[None])[0][mlp._columns])
        assert np.allclose(EnsembleRecognizer(members).predict_proba(y), raw, atol=1e-9)
        scaled = EnsembleRecognizer(members, temperature=2.0).predict_proba(y)
        assert np.allclose(scaled, apply_temperature(raw, 2.0), atol=1e-12)
        assert scaled.argmax() == raw.argmax() and scaled.max() < raw.max()
    finally:
        mlp.temperature = None


def test_bad_weights_are_refused(members):
    from ser.models.ensemble import EnsembleRecognizer

    with pytest.raises(ModelError, match="do not match"):
        EnsembleRecognizer(members, weights={"mlp": 1.0})
    with pytest.raises(ModelError, match="non-negative"):
        EnsembleRecognizer(members, weights={"mlp": -1.0, "cnn": 1.0})


def test_saved_ensemble_is_self_contained_and_served_by_ser_predict(members, tmp_path, monkeypatch):
    import shutil

    import soundfile as sf

    from ser.models import registry as recognizer
    from ser.models.ensemble import EnsembleRecognizer

    ens = EnsembleRecognizer(members)
    folder = ens.save_pretrained(tmp_path / "models" / "ensemble", metadata={"metrics": {}})
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "ensemble" and config["weights"] == {"mlp": 0.5, "cnn": 0.5}
    for name, model_file in (("mlp", "model.skops"), ("cnn", "model.keras")):
        assert (folder / name / model_file).is_file() and (folder / name / "metadata.json").is_file()
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["model"] == "ensemble" and "cnn/model.keras" in meta["files"]

    # moved elsewhere alone (as on the Hub), it still loads and predicts the same
    alone = tmp_path / "alone"
    shutil.copytree(tmp_path / "models" / "ensemble", alone)
    shutil.rmtree(tmp_path / "models")
    y = voice(200.0)
    wav = tmp_path / "clip.wav"
    sf.write(wav, y, SR, subtype="FLOAT")
    loaded = Recognizer.from_pretrained(alone)
    assert type(loaded).__name__ == "EnsembleRecognizer" and set(loaded.members) == {"mlp", "cnn"}
    assert np.allclose(loaded.predict(wav).confidence, ens.predict(wav).confidence, atol=1e-9)

    monkeypatch.setenv("SER_MODELS_DIR", str(tmp_path / "served"))
    shutil.copytree(alone, tmp_path / "served" / "ensemble")
    monkeypatch.setattr(recognizer, "_DEFAULT", None)
    p = recognizer.predict(str(wav), model="ensemble")
    assert p.model == "ensemble" and p.probabilities == ens.predict(wav).probabilities


def test_tampered_member_file_is_detected(members, tmp_path):
    from ser.models.ensemble import EnsembleRecognizer

    folder = EnsembleRecognizer(members).save_pretrained(tmp_path / "ensemble")
    with open(folder / "cnn" / "model.keras", "ab") as f:
        f.write(b"tampered")
    with pytest.raises(ModelError, match="model.keras"):
        Recognizer.from_pretrained(folder)


def test_build_ensemble_metadata_has_the_member_keys(members):
    from ser.training.ensemble import build_ensemble

    clips = [Clip(f"/x/{i}.wav", LABELS[i % 4], f"c_{i // 4}", "male", "c") for i in range(8)]
    y = np.array([i % 4 for i in range(8)])
    rng = np.random.default_rng(1)
    results = {n: {p: _result(p, LABELS, np.arange(8), rng.dirichlet(np.ones(4), size=8), y)
                   for p in ("speaker_independent", "stratified")} for n in ("mlp", "cnn")}
    rec, report = build_ensemble(members, results, clips)
    meta = rec.metadata
    assert meta["model"] == "ensemble"
    assert set(meta["metrics"]) == {"speaker_independent", "stratified"}
    for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "uar", "confusion", "labels",
                "report", "protocol", "n_test"):
        assert key in meta["metrics"]["stratified"], key
    for key in ("params", "preprocessing", "data", "library_versions", "created"):
        assert key in meta
    assert set(rec.oof) == {"speaker_independent", "stratified"}
    assert rec.temperature == meta["calibration"]["temperature"] and rec.config()["temperature"] > 0


@pytest.mark.slow
def test_train_all_reusing_a_saved_cnn_evaluates_on_the_same_splits(tmp_path, monkeypatch):
    """The `train.py ensemble --cnn DIR` path: the CNN's saved out-of-fold predictions meet a
    freshly evaluated MLP's on the same clips; the ensemble is saved and served."""
    pytest.importorskip("keras")
    import soundfile as sf

    from ser.training.cnn import train_cnn
    from ser.training.ensemble import train_all

    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))
    clips = []
    for s in range(4):
        for i in range(8):
            path = tmp_path / f"s{s}_{i}.wav"
            sf.write(path, voice(130.0 if i % 2 == 0 else 800.0, 1.0 + 0.05 * i), SR)
            clips.append(Clip(str(path), LABELS[i % 2], f"syn_{s}", "female" if s % 2 else "male", "syn"))
    tiny = {"filters": [4, 8], "block_dropout": 0.0, "dropout": 0.0, "batch_size": 16, "validation_speakers": 1}
    cnn, _ = train_cnn(clips, params=tiny, epochs=2, variants=(), n_jobs=1)
    cnn_dir = cnn.save_pretrained(tmp_path / "models" / "cnn")
    out = train_all(clips, members=("mlp", "cnn"), reuse={"cnn": str(tmp_path / "models" / "cnn")}, n_jobs=1,
                    member_kwargs={"mlp": {"search": False, "importance": False, "variants": ()}})
    ens, results, _ = out["ensemble"]
    assert out["cnn"][2] is True and cnn_dir.parent.parent == out["cnn"][0].path  # the served mirror
    for protocol in ("speaker_independent", "stratified"):
        assert np.array_equal(np.sort(results[protocol].test_index),
                              np.sort(out["mlp"][1][protocol].test_index))
        m = ens.metadata["metrics"][protocol]
        assert m["n_test"] == len(results[protocol].test_index) and set(m["members"]) == {"mlp", "cnn"}
    assert ens.metadata["metrics"]["speaker_independent"]["n_test"] == len(clips)
    folder = ens.save_pretrained(tmp_path / "models" / "ensemble")
    again = Recognizer.from_pretrained(folder)
    assert np.allclose(again.predict_proba(voice(300.0)), ens.predict_proba(voice(300.0)), atol=1e-9)
    assert set(again.oof) == {"speaker_independent", "stratified"}  # its out-of-fold predictions come along
    with pytest.raises(ModelError, match="has no out-of-fold predictions"):
        mlp_dir = out["mlp"][0]
        mlp_dir.oof = None
        train_all(clips, members=("mlp",), reuse={"mlp": str(mlp_dir.save_pretrained(tmp_path / "bare"))}, n_jobs=1)
    with pytest.raises(ModelError, match="Unknown ensemble members"):
        train_all(clips, members=("mlp", "svm"), n_jobs=1)


def test_members_tested_under_the_same_degradation_give_the_ensemble_its_robustness(members):
    """A condition every member was tested under ("speaker_independent@telephone") is combined like
    a protocol (same weighted mean) and reported under "robustness", not among the protocols; one
    that only some members have is left out."""
    from ser.training.ensemble import build_ensemble

    clips = [Clip(f"/x/{i}.wav", LABELS[i % 4], f"c_{i // 4}", "male", "c") for i in range(8)]
    y = np.array([i % 4 for i in range(8)])
    rng = np.random.default_rng(2)
    keys = ("speaker_independent", "stratified", "speaker_independent@telephone")
    results = {n: {p: _result(p, LABELS, np.arange(8), rng.dirichlet(np.ones(4), size=8), y) for p in keys}
               for n in ("mlp", "cnn")}
    results["cnn"]["speaker_independent@white10dB"] = _result("speaker_independent@white10dB", LABELS, np.arange(8),
                                                              rng.dirichlet(np.ones(4), size=8), y)
    rec, report = build_ensemble(members, results, clips, calibrate=False)
    assert set(rec.metadata["metrics"]) == {"speaker_independent", "stratified"}
    assert set(rec.metadata["robustness"]) == {"telephone"}
    tel = report.results["speaker_independent@telephone"]
    mean = (results["mlp"]["speaker_independent@telephone"].proba + results["cnn"]["speaker_independent@telephone"].proba) / 2
    np.testing.assert_allclose(tel.proba, mean)
    assert rec.metadata["robustness"]["telephone"]["uar"] == tel.metrics["uar"]
    assert tel.metrics["protocol"].endswith("test audio degraded: telephone")
    assert "speaker_independent@telephone" in rec.oof and "speaker_independent@white10dB" not in rec.oof

    without = {n: {p: r for p, r in res.items() if "@" not in p} for n, res in results.items()}
    assert build_ensemble(members, without, clips, calibrate=False)[0].metadata["robustness"] is None
