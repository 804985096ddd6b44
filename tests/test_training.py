"""ser/training/mlp.py: a training run evaluates both protocols, keeps augmented copies on the
training side of every split, fits the temperature on training folds only, and ships it; the
MLPTrainer that train_mlp and the studies in bench/ fit through.

A synthetic corpus (4 voices x 3 emotions x 3 clips, seconds to run) checks what every fit saw; a
small real run (RAVDESS actors 1-4) checks that the result beats chance on unseen actors.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from audio_cases import speech_like
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from ser.audio.corpora import Clip, load_corpus
from ser.features.handcrafted import extract_corpus
from ser.models.base import Recognizer
from ser.models.mlp import MLPRecognizer
from ser.training import protocols
from ser.training.mlp import MLPTrainer, train_mlp

EMOTIONS = ("sad", "neutral", "angry")
VARIANTS = ("original", "noise20dB")
TINY = {"hidden_layer_sizes": (8,), "batch_size": 8}  # networks of the synthetic tables


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[Clip]:
    """Synthetic voices: pitch and loudness carry the emotion, each speaker has its own range."""
    folder = tmp_path_factory.mktemp("voices")
    clips = []
    for s, base in enumerate((110.0, 140.0, 180.0, 230.0)):
        for e, (emotion, ratio) in enumerate(zip(EMOTIONS, (0.8, 1.0, 1.4))):
            for k in range(3):
                path = folder / f"s{s}_{emotion}_{k}.wav"
                sf.write(path, speech_like(1.2, f0=base * ratio * (1 + 0.02 * k), peak=0.2 + 0.2 * e), 16000)
                clips.append(Clip(str(path), emotion, f"syn_{s}", "female" if s % 2 else "male", "syn"))
    return clips


@pytest.fixture(scope="module")
def spied_run(corpus, tmp_path_factory):
    """``train_mlp`` on the corpus, recording every pipeline fit and every temperature with the fold
    (protocol, train, test) it served; ``None`` outside the protocols (the final model)."""
    fits, temperatures, current = [], [], {"fold": None}
    real_splits, real_fit, real_temperature = protocols.protocol_splits, Pipeline.fit, MLPTrainer.temperature

    class Folds(list):
        """The protocol's splits, marking which one is being trained and tested."""

        protocol = ""

        def __iter__(self):
            for train, test in list.__iter__(self):
                current["fold"] = (self.protocol, np.asarray(train), np.asarray(test))
                yield train, test
            current["fold"] = None

    def protocol_splits(clips, protocol, **kwargs):
        folds = Folds(real_splits(clips, protocol, **kwargs))
        folds.protocol = protocol
        return folds

    def fit(self, X, y=None, **kwargs):
        fits.append((current["fold"], np.array(X, copy=True), np.asarray(y)))
        return real_fit(self, X, y, **kwargs)

    def temperature(self, idx, *args, **kwargs):
        t, oof = real_temperature(self, idx, *args, **kwargs)
        temperatures.append((current["fold"], np.asarray(idx), t))
        return t, oof

    with pytest.MonkeyPatch.context() as mp, threadpool_limits(1):
        mp.setenv("SER_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        mp.setattr(protocols, "protocol_splits", protocol_splits)
        mp.setattr(Pipeline, "fit", fit)
        mp.setattr(MLPTrainer, "temperature", temperature)
        rec, report = train_mlp(corpus, search=False, variants=VARIANTS[1:], importance=False, n_jobs=1,
                                params={"hidden_layer_sizes": (16,), "batch_size": 16})
        X, _ = extract_corpus([c.path for c in corpus], variants=VARIANTS, n_jobs=1, progress=False)
    return rec, report, fits, temperatures, X


def _clips_of(X_fit: np.ndarray, X: np.ndarray) -> list[tuple[int, int]]:
    """(clip, variant) of every fitted row, found by value among the corpus's feature rows."""
    where = {X[i, v].tobytes(): (i, v) for i in range(X.shape[0]) for v in range(X.shape[1])}
    return [where[row.tobytes()] for row in X_fit]


def test_both_protocols_are_evaluated_and_recorded(spied_run, corpus):
    _, report, *_ = spied_run
    metrics = report.metadata["metrics"]
    assert set(metrics) == {"speaker_independent", "stratified"}
    assert metrics["speaker_independent"]["n_test"] == len(corpus)  # every clip tested once
    assert metrics["speaker_independent"]["folds"] == 4 and "speaker-independent" in metrics["speaker_independent"]["protocol"]
    assert metrics["stratified"]["n_test"] == pytest.approx(len(corpus) / 4, abs=2)
    for m in metrics.values():
        assert np.array(m["confusion"]).sum() == m["n_test"] and m["labels"] == ["neutral", "sad", "angry"]
    assert set(report.results) == set(metrics)


def test_augmented_copies_stay_on_the_training_side(spied_run, corpus):
    _, _, fits, _, X = spied_run
    served = {"speaker_independent": 0, "stratified": 0}
    for fold, X_fit, y_fit in fits:
        rows = _clips_of(X_fit, X)
        clips = {i for i, _ in rows}
        assert sorted(rows) == sorted((i, v) for i in clips for v in range(len(VARIANTS)))  # copies follow clips
        assert list(y_fit) == [corpus[i].emotion for i, _ in rows]
        if fold is None:
            continue  # the final model (and its calibration) trains on everything
        protocol, train, test = fold
        assert clips <= set(train.tolist()) and not clips & set(test.tolist()), protocol
        served[protocol] += clips == set(train.tolist())
    assert served == {"speaker_independent": 4, "stratified": 1}  # one outer fit per fold


def test_the_temperature_is_fitted_on_training_folds_only_and_shipped(spied_run, corpus, tmp_path):
    rec, report, fits, temperatures, _ = spied_run
    si = [(fold, idx, t) for fold, idx, t in temperatures if fold is not None]
    assert [fold[0] for fold, _, _ in si] == ["speaker_independent"] * 4  # none for the stratified split
    for fold, idx, _ in si:
        assert np.array_equal(np.sort(idx), np.sort(fold[1]))  # the fold's training clips, none of its test clips
    calibration = report.metadata["calibration"]
    assert calibration["protocols"]["speaker_independent"]["temperatures"] == [t for _, _, t in si]
    assert "stratified" not in calibration["protocols"]
    final = [(len(idx), t) for fold, idx, t in temperatures if fold is None]
    assert final == [(len(corpus), rec.temperature)] and calibration["temperature"] == rec.temperature
    folder = rec.save_pretrained(tmp_path / "mlp")
    assert Recognizer.from_pretrained(folder).temperature == pytest.approx(rec.temperature)
    si_calibration = calibration["protocols"]["speaker_independent"]
    assert sum(r["count"] for r in si_calibration["reliability_before"]) == len(corpus)
    assert 0 <= si_calibration["ece_after"] <= 1 and 0 <= si_calibration["ece_before"] <= 1


def test_without_calibration_nothing_is_fitted_on_held_out_predictions(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))
    with threadpool_limits(1):
        rec, report = train_mlp(corpus, search=False, variants=(), importance=False, calibrate=False, n_jobs=1,
                                protocols=("stratified",), params=TINY)
    assert rec.temperature is None and report.metadata["calibration"] is None
    assert set(report.metadata["metrics"]) == {"stratified"}


# -- MLPTrainer on feature rows ----------------------------------------------------------------------
def _table(n_per: int = 4, speakers: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    clips, rows = [], []
    for s in range(speakers):
        for e, emotion in enumerate(EMOTIONS):
            for k in range(n_per):
                clips.append(Clip(f"/x/s{s}_{emotion}_{k}.wav", emotion, f"spk{s}", "male", "syn"))
                clean = rng.normal(size=6) + 3.0 * e + s
                rows.append([clean, clean + rng.normal(scale=0.1, size=6)])
    return np.array(rows), clips


def test_training_rows_follow_each_clip_with_its_copies():
    X, clips = _table()
    trainer = MLPTrainer(X, clips, list(EMOTIONS), train_cols=[1, 0])
    idx = np.array([5, 2])
    R, y = trainer.training_rows(idx)
    assert np.array_equal(R, np.stack([X[5, 1], X[5, 0], X[2, 1], X[2, 0]]))
    assert list(y) == [clips[5].emotion] * 2 + [clips[2].emotion] * 2
    with pytest.raises(ValueError, match="n_clips, n_variants, n_features"):
        MLPTrainer(X[:, 0], clips, list(EMOTIONS))


def test_probabilities_are_the_saved_models_path_in_label_order():
    X, clips = _table()
    labels = ["angry", "sad", "neutral"]
    trainer = MLPTrainer(X, clips, labels)
    everything = np.arange(len(clips))
    model = trainer.fit(everything, TINY)
    P = trainer.proba(model, everything)
    assert np.array_equal(P, MLPRecognizer(model, labels=labels).raw_proba_from_features(X[:, 0]))
    assert np.array_equal(trainer.proba(model, everything, col=1), trainer.proba(model, rows=X[:, 1]))
    assert np.array_equal(trainer.targets(everything), [labels.index(c.emotion) for c in clips])


def test_a_label_missing_from_the_training_side_gets_probability_zero():
    X, clips = _table()
    trainer = MLPTrainer(X, clips, list(EMOTIONS))
    no_angry = np.array([i for i, c in enumerate(clips) if c.emotion != "angry"])
    P = trainer.proba(trainer.fit(no_angry, TINY), np.arange(len(clips)))
    assert np.all(P[:, EMOTIONS.index("angry")] == 0) and np.allclose(P.sum(axis=1), 1.0)


def test_out_of_fold_temperature_never_predicts_a_speaker_it_trained_on(monkeypatch):
    X, clips = _table()
    trainer = MLPTrainer(X, clips, list(EMOTIONS))
    seen = []
    real_fit = trainer.fit

    def fit(idx, params=None):
        seen.append(set(idx.tolist()))
        return real_fit(idx, params)

    def proba(model, idx=None, **kwargs):
        assert not {clips[i].speaker for i in idx} & {clips[i].speaker for i in seen[-1]}
        return MLPTrainer.proba(trainer, model, idx, **kwargs)

    monkeypatch.setattr(trainer, "fit", fit)
    monkeypatch.setattr(trainer, "proba", proba)
    train = np.arange(len(clips))
    t, oof = trainer.temperature(train, TINY, n_splits=3)
    assert len(seen) == 3 and oof.shape == (len(clips), 3) and 0.05 <= t <= 20
    one_speaker = np.array([i for i, c in enumerate(clips) if c.speaker == "spk0"])
    assert trainer.temperature(one_speaker) == (None, None)  # nobody to hold out


def test_calibrated_gives_a_recognizer_with_its_temperature():
    X, clips = _table()
    trainer = MLPTrainer(X, clips, list(EMOTIONS))
    everything = np.arange(len(clips))
    rec = trainer.calibrated(everything, TINY, n_splits=3)
    t, _ = trainer.temperature(everything, TINY, n_splits=3)
    assert isinstance(rec, MLPRecognizer) and rec.labels == list(EMOTIONS) and rec.temperature == t
    assert trainer.calibrated(everything, TINY, calibrate=False).temperature is None
    with pytest.raises(ValueError, match="speaker_norm=False"):
        MLPTrainer(X, clips, list(EMOTIONS), speaker_norm=True).calibrated(everything)


def test_speaker_norm_standardises_each_speakers_rows_within_the_call():
    X, clips = _table()
    trainer = MLPTrainer(X, clips, list(EMOTIONS), speaker_norm=True)
    idx = np.arange(len(clips))
    R = trainer.rows(idx, 1)
    for s in {c.speaker for c in clips}:
        mine = [k for k, i in enumerate(idx) if clips[i].speaker == s]
        assert np.allclose(R[mine].mean(axis=0), 0.0, atol=1e-6)
    assert not np.allclose(MLPTrainer(X, clips, list(EMOTIONS)).rows(idx, 1), R)


def test_enrolment_standardises_each_speaker_by_k_clips_of_its_own_and_fits_heads():
    """Training for speaker adaptation: each speaker's rows (per column) relative to k random clips
    of its own; the head's floor is 0.1 x the raw training std; rows outside idx are never read."""
    from ser.models.speaker import AdaptedHead, Enrolment, enrolment_draw, std_floor
    from ser.training.pipeline import fit_adaptation

    X, clips = _table()
    X = X.copy()
    speakers = np.array([c.speaker for c in clips])
    trainer = MLPTrainer(X, clips, list(EMOTIONS), enrolment=Enrolment("z", k=3), seed=7)
    idx = np.flatnonzero(speakers != "spk2")
    X[speakers == "spk2"] = np.nan  # never read
    floor = trainer.floor(idx)
    np.testing.assert_allclose(floor, std_floor(X[idx].reshape(-1, X.shape[-1]), 0.1))
    R = trainer.rows(idx, 1, floor=floor)
    draw = enrolment_draw(speakers[idx], 3, seed=7)
    for s, enrolled in draw.items():
        E = X[idx][enrolled, 1]
        mine = speakers[idx] == s
        np.testing.assert_allclose(R[mine], (X[idx][mine, 1] - E.mean(0)) / np.maximum(E.std(0), floor))
    head = trainer.fit(idx, TINY)
    assert isinstance(head, AdaptedHead) and np.array_equal(head.floor, floor)
    P = trainer.proba(head, idx)
    assert np.isfinite(P).all() and np.allclose(P.sum(1), 1)
    with pytest.raises(ValueError, match="adapted_head"):
        trainer.calibrated(idx)
    with pytest.raises(ValueError, match="not both"):
        MLPTrainer(X, clips, list(EMOTIONS), speaker_norm=True, enrolment=Enrolment())
    adaptation = fit_adaptation(MLPTrainer, X, clips, list(EMOTIONS), idx, TINY, n_splits=2,
                                recipe={"heads": (Enrolment("z", k=3), Enrolment("mean", k=2)), "z_from_clips": 5})
    assert set(adaptation.heads) == {"z", "mean"} and adaptation.heads["mean"].floor is None
    assert all(h.temperature is not None for h in adaptation.heads.values()) and adaptation.z_from_clips == 5
    assert adaptation.parts_for(4) == ("model", "mean", "z") and adaptation.parts_for(5) == ("z",)


# -- a small real run ----------------------------------------------------------------------------------
ACTORS = [f"ravdess_{i:02d}" for i in range(1, 5)]


@pytest.fixture(scope="module")
def ravdess_run(ravdess_dir):
    clips = [c for c in load_corpus(ravdess_dir) if c.speaker in ACTORS]
    # a small network and no calibration fits keep this to seconds on 2 cores
    rec, report = train_mlp(clips, search=False, params={"hidden_layer_sizes": (128,)}, variants=("noise20dB",),
                            importance=True, calibrate=False, n_jobs=2)
    return clips, rec, report


def test_a_small_real_run_beats_chance_on_unseen_actors(ravdess_run):
    clips, _, report = ravdess_run
    si = report.metadata["metrics"]["speaker_independent"]
    assert si["n_test"] == len(clips) == 240  # every clip tested once, by a model that never heard its actor
    assert si["accuracy"] > 2 * (1 / 8), si["accuracy"]
    assert report.metadata["metrics"]["stratified"]["n_test"] == pytest.approx(60, abs=2)
    assert set(report.metadata["feature_importance"]["speaker_independent"]) >= {"mfcc", "mel", "pitch"}
    pairs = si["error_analysis"]
    assert pairs and pairs[0]["count"] >= pairs[-1]["count"] and len(pairs[0]["examples"]) >= 1


def test_a_runs_metadata_has_the_promised_keys(ravdess_run, tmp_path):
    _, rec, _ = ravdess_run
    rec.save_pretrained(tmp_path / "mlp")
    meta = rec.metadata
    for key in ("model", "version", "params", "preprocessing", "data", "metrics", "library_versions", "files"):
        assert key in meta, key
    assert meta["model"] == "mlp" and meta["version"].startswith("v20")
    for protocol in ("speaker_independent", "stratified"):
        m = meta["metrics"][protocol]
        for key in ("accuracy", "macro_f1", "uar", "confusion", "labels", "protocol"):
            assert key in m, (protocol, key)
        assert np.array(m["confusion"]).sum() == m["n_test"]
    assert meta["data"]["speakers"] == 4 and meta["data"]["licences"] == {"ravdess": "CC BY-NC-SA 4.0"}
    assert meta["preprocessing"]["audio"]["sr"] == 16000
    assert meta["params"]["augmentation"] == ["noise20dB"] and meta["params"]["search"]["enabled"] is False


@pytest.mark.parametrize("kind", ["mlp", "smile"])
def test_fold_models_are_tested_on_degraded_copies_they_never_trained_on(kind, corpus, tmp_path, monkeypatch):
    """``test_conditions``: the speaker-independent fold models also predict a degraded copy of each test
    clip (metadata "robustness", out-of-fold "speaker_independent@white5dB"); the copies are never
    trained on, so everything else is what a run without them gives."""
    from ser.audio.io import load_audio

    if kind == "smile":
        pytest.importorskip("opensmile")
        from ser.training.smile import train_smile as train
        kw = dict(search=False, adapt=False)
    else:
        train = train_mlp
        kw = dict(search=False, params=TINY, importance=False, variants=("noise20dB",))
    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))
    kw.update(calibrate=False, n_jobs=1)
    rec, report = train(corpus, test_conditions=("white5dB",), **kw)
    plain, plain_report = train(corpus, **kw)

    assert set(rec.metadata["metrics"]) == {"speaker_independent", "stratified"}
    assert set(rec.metadata["robustness"]) == {"white5dB"} and plain.metadata["robustness"] is None
    noisy, clean = report.results["speaker_independent@white5dB"], report.results["speaker_independent"]
    assert np.array_equal(noisy.test_index, clean.test_index) and not np.allclose(noisy.proba, clean.proba)
    assert rec.metadata["robustness"]["white5dB"]["n_test"] == len(corpus)
    assert "speaker_independent@white5dB" in rec.oof
    np.testing.assert_allclose(clean.proba, plain_report.results["speaker_independent"].proba, atol=1e-9)
    y0 = load_audio(corpus[0].path)
    np.testing.assert_allclose(rec.predict_proba(y0), plain.predict_proba(y0), atol=1e-9)
