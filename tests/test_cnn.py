"""The CNN: factory, training on synthesized clips, save/load, and the preprocessing it applies.

Tiny networks only (a few hundred parameters, a few steps) so the file runs in seconds on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ser.audio.corpora import Clip
from ser.models import base
from ser.training import cnn as cnn_training

REPO = Path(__file__).resolve().parents[1]
SR = 16_000
LABELS = ["neutral", "calm", "happy", "sad"]  # canonical order; the network's order is sorted()
TINY = {"filters": [4, 8], "stem_stride": 2, "block_dropout": 0.0, "dropout": 0.0, "batch_size": 16}


def voice(f0: float, seconds: float = 1.2, *, seed: int = 0) -> np.ndarray:
    """A harmonic tone at ``f0`` with a little noise, 16 kHz float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8)) * (0.6 + 0.4 * np.cos(2 * np.pi * 3 * t))
    return (0.3 * y / np.abs(y).max() + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.mark.parametrize("given, enabled", [(None, True), ("0", False)])
def test_tensorflow_runs_its_onednn_kernels_unless_told_otherwise(given, enabled):
    """keras_module() turns TensorFlow's oneDNN kernels on (TensorFlow does so itself only on some CPUs;
    without them this network trained 1.4x slower here, bench/tf_speed.py); a user's explicit setting
    wins. In a fresh interpreter: TensorFlow reads the variable once, when it starts."""
    pytest.importorskip("keras")
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if given is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = given
    code = ("import os\n"
            "from ser.models.cnn import keras_module\n"
            "keras_module()\n"
            "from tensorflow.python.util import _pywrap_util_port\n"
            "print(os.environ['TF_ENABLE_ONEDNN_OPTS'], _pywrap_util_port.IsMklEnabled())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                         cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == [given or "1", str(enabled)]


@pytest.fixture(scope="module")
def cnn():
    pytest.importorskip("keras")
    from ser.models import cnn

    return cnn


@pytest.fixture(scope="module")
def tiny_recognizer(cnn):
    """An untrained tiny CNN wrapped as a recognizer (weights are random but seeded)."""
    model = cnn.build_cnn((128, 128), len(LABELS), filters=(4, 8), seed=1)
    return cnn.CNNRecognizer(model, labels=LABELS)


def test_importing_ser_cnn_does_not_import_tensorflow():
    code = "import sys, ser.models.cnn, ser.models.ensemble; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_build_cnn_shapes_and_softmax(cnn):
    model = cnn.build_cnn((128, 128), 8, filters=(8, 16, 32), seed=0)
    assert model.input_shape == (None, 128, 128) and model.output_shape == (None, 8)
    p = np.asarray(model(np.random.default_rng(0).uniform(-1, 1, (3, 128, 128)).astype("float32"), training=False))
    assert p.shape == (3, 8) and np.allclose(p.sum(axis=1), 1.0, atol=1e-5) and np.all(p >= 0)
    assert cnn.build_cnn((128, 128, 1), 8).output_shape == (None, 8)
    # global pooling keeps the network small: parameters do not grow with the image size
    small = cnn.build_cnn((128, 128), 8, filters=(16, 32, 64))
    assert small.count_params() < 30_000
    freq = cnn.build_cnn((128, 128), 8, filters=(16, 32, 64), head="freq")
    assert freq.count_params() > small.count_params()


@pytest.mark.parametrize("shape, n, message", [((128,), 8, "input_shape"), ((128, 128, 3), 8, "input_shape"),
                                               ((128, 128), 1, "n_classes")])
def test_build_cnn_rejects_bad_arguments(cnn, shape, n, message):
    with pytest.raises(ValueError, match=message):
        cnn.build_cnn(shape, n)


def test_tiny_cnn_learns_synthesized_clips(cnn):
    from ser.features.logmel import logmel_windows

    # two "emotions": low and high voices; one image set per clip, two variants (original, louder)
    images, y = [], []
    for i in range(32):
        c = i % 2
        w = logmel_windows(voice(120.0 if c == 0 else 900.0, 1.0 + 0.02 * i, seed=i)).astype(np.float16)
        images.append([w, w])
        y.append(c)
    y = np.array(y)
    model, hist = cnn_training.fit_cnn(images, y, np.arange(24), np.arange(24, 32), n_classes=2,
                              params={**TINY, "epochs": 6, "patience": 6, "learning_rate": 3e-3}, seed=0)
    assert hist["epochs"] == len(hist["loss"]) == len(hist["val_accuracy"])
    assert hist["loss"][-1] < 0.8 * hist["loss"][0], hist["loss"]
    assert 1 <= hist["best_epoch"] <= hist["epochs"] and hist["train_images_per_epoch"] == 48
    p = cnn_training._clip_proba(model, images, np.arange(24, 32))  # (batch-norm statistics need more steps
    assert p.shape == (8, 2) and np.allclose(p.sum(axis=1), 1.0)  # than this to predict well)


def test_save_load_round_trip_gives_identical_outputs(cnn, tiny_recognizer, tmp_path):
    from ser.models.base import Recognizer

    y = voice(200.0, 3.0)
    before = tiny_recognizer.predict_proba(y)
    folder = tiny_recognizer.save_pretrained(tmp_path / "cnn", metadata={"history": {"loss": [1.0]}})
    for name in ("config.json", "model.keras", "cnn_emotion_model.h5", "label_encoder.pkl", "metadata.json"):
        assert (folder / name).is_file(), name
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "cnn" and config["spectrogram"]["n_mels"] == 128
    assert config["classes"] == sorted(LABELS)
    loaded = Recognizer.from_pretrained(tmp_path / "cnn")
    assert type(loaded).__name__ == "CNNRecognizer" and loaded.labels == LABELS
    assert np.array_equal(loaded.predict_proba(y), before)
    assert loaded.metadata["history"] == {"loss": [1.0]}
    # the seed's label encoder decodes the network's argmax (sorted order)
    import joblib

    assert list(joblib.load(folder / "label_encoder.pkl").classes_) == sorted(LABELS)


def test_temperature_is_saved_and_softens_probabilities(cnn, tmp_path):
    from ser.models.calibration import apply_temperature
    from ser.models.base import Recognizer

    model = cnn.build_cnn((128, 128), len(LABELS), filters=(4, 8), seed=3)
    y = voice(180.0, 2.0)
    raw = cnn.CNNRecognizer(model, labels=LABELS).predict_proba(y)
    hot = cnn.CNNRecognizer(model, labels=LABELS, temperature=2.5)
    hot.save_pretrained(tmp_path / "cnn")
    loaded = Recognizer.from_pretrained(tmp_path / "cnn")
    assert loaded.temperature == 2.5
    assert json.loads((tmp_path / "cnn" / "config.json").read_text())["temperature"] == 2.5
    p = loaded.predict_proba(y)
    assert np.allclose(p, apply_temperature(raw, 2.5)) and p.argmax() == raw.argmax()
    assert p.max() < raw.max()  # softer: the top class loses probability


def test_damaged_model_file_is_refused(cnn, tiny_recognizer, tmp_path):
    from ser.errors import ModelError
    from ser.models.base import Recognizer

    folder = tiny_recognizer.save_pretrained(tmp_path / "cnn")
    with open(folder / "model.keras", "r+b") as f:
        f.seek(100)
        f.write(b"garbage")
    with pytest.raises(ModelError, match="model.keras"):
        Recognizer.from_pretrained(folder)


def test_columns_follow_labels_not_network_order(cnn):
    model = cnn.build_cnn((128, 128), len(LABELS), filters=(4,), seed=0)
    dense = model.get_layer("emotion")
    kernel, bias = dense.get_weights()
    bias[:] = 0.0
    bias[sorted(LABELS).index("sad")] = 20.0  # the network's output for "sad" dominates
    dense.set_weights([np.zeros_like(kernel), bias])
    rec = cnn.CNNRecognizer(model, labels=LABELS)
    assert rec.predict_array(voice(150.0)).label == "sad"
    assert rec.predict_proba(voice(150.0))[LABELS.index("sad")] > 0.99


def test_predict_applies_the_saved_preprocessing(cnn, tmp_path):
    """Same input → same probabilities through the file path and the array path, with the
    spectrogram settings saved in config.json (a non-default floor here), not the defaults."""
    import soundfile as sf

    from ser.audio.io import load_audio
    from ser.models.base import Recognizer
    from ser.features.logmel import SpectrogramConfig, logmel_windows

    spec = SpectrogramConfig(top_db=60.0)
    model = cnn.build_cnn((128, 128), len(LABELS), filters=(4, 8), seed=3)
    cnn.CNNRecognizer(model, labels=LABELS, spectrogram=spec).save_pretrained(tmp_path / "cnn")
    rec = Recognizer.from_pretrained(tmp_path / "cnn")
    assert rec.spectrogram == spec

    y = np.concatenate([np.zeros(4000, np.float32), voice(180.0, 3.0), np.zeros(4000, np.float32)])
    wav = tmp_path / "clip.wav"
    sf.write(wav, y, SR, subtype="FLOAT")
    from_file = rec.predict(wav)
    loaded = load_audio(wav)  # trimmed as at training time
    assert len(loaded) < len(y)
    from_array = rec.predict_array(loaded)
    assert from_file.probabilities == from_array.probabilities
    manual = np.asarray(model.predict_on_batch(logmel_windows(loaded, config=spec))).mean(axis=0)
    expected = manual[[sorted(LABELS).index(lab) for lab in LABELS]]
    assert np.allclose(list(from_file.probabilities.values()), expected, atol=1e-6)
    default = np.asarray(model.predict_on_batch(logmel_windows(loaded))).mean(axis=0)
    assert not np.allclose(manual, default, atol=1e-6)  # the saved setting mattered
    # a Gradio-style (rate, int16 samples) pair at 44.1 kHz goes through the same loader
    assert rec.predict((SR, (y * 32767).astype(np.int16))).label in LABELS


def test_long_clip_is_averaged_over_windows(cnn, tiny_recognizer):
    y = voice(220.0, 8.0)
    X = tiny_recognizer.windows(y)
    assert X.shape[0] > 1
    per_window = np.asarray(tiny_recognizer.model.predict_on_batch(X))
    expected = per_window.mean(axis=0)[tiny_recognizer._columns]
    assert np.allclose(tiny_recognizer.predict_proba(y), expected, atol=1e-6)


def _clips(n_speakers: int = 6, per: int = 4) -> list[Clip]:
    return [Clip(f"/x/{s}/{i}.wav", LABELS[i % 4], f"c_{s:02d}", "female" if s % 2 else "male", "c")
            for s in range(n_speakers) for i in range(per)]


def test_validation_split_holds_out_training_speakers_only(cnn):
    clips = _clips()
    train = np.array([i for i, c in enumerate(clips) if c.speaker != "c_00"])
    fit, val = cnn_training.validation_split(clips, train, n_speakers=2, seed=0)
    assert set(fit) | set(val) == set(train) and not set(fit) & set(val)
    held = {clips[i].speaker for i in val}
    assert len(held) == 2 and "c_00" not in held
    assert {clips[i].gender for i in val} == {"female", "male"}  # one of each
    assert not held & {clips[i].speaker for i in fit}
    # too few speakers: a stratified clip split instead, still inside the training side
    few = np.array([i for i, c in enumerate(clips) if c.speaker in ("c_01", "c_02", "c_03")])
    fit, val = cnn_training.validation_split(clips, few, n_speakers=2, seed=0, groups=[c.path for c in clips])
    assert len(val) and set(fit) | set(val) == set(few) and not set(fit) & set(val)


def test_augmentation_moves_only_padding_and_stays_in_range(cnn):
    from ser.features.logmel import logmel_image

    img = logmel_image(voice(200.0, 1.0))
    rng = np.random.default_rng(0)
    first, last = cnn_training._content_span(img)
    width = last - first
    for _ in range(20):
        out = cnn_training._augment_image(img, rng, shift=True, masking=False)
        f2, l2 = cnn_training._content_span(out)
        assert l2 - f2 == width and 0 <= f2 and l2 <= 127
        assert np.array_equal(out[:, f2:l2 + 1], img[:, first:last + 1])
    masked = cnn_training._augment_image(img, np.random.default_rng(1), shift=False, masking=True)
    assert masked.shape == img.shape and masked.min() >= -1 and masked.max() <= 1


def test_oof_round_trip(cnn, tmp_path):
    oof = {"stratified": {"clip_ids": ["a/b/1", "a/b/2"], "proba": np.eye(2, 4), "labels": LABELS}}
    base.save_oof(tmp_path / "o.npz", oof)
    back = base.load_oof(tmp_path / "o.npz")
    assert back["stratified"]["clip_ids"] == ["a/b/1", "a/b/2"] and back["stratified"]["labels"] == LABELS
    assert np.array_equal(back["stratified"]["proba"], np.eye(2, 4))


def test_cnn_trainer_reads_only_its_training_side_and_columns(cnn):
    """CNNTrainer (train_cnn's and the studies' fits): test clips and columns outside ``train_cols``
    are never read (they hold NaN here, which would poison the loss); probabilities follow labels."""
    rng = np.random.default_rng(0)
    clips = _clips(n_speakers=5, per=4)
    clean = [rng.uniform(-1, 1, size=(2, 128, 128)).astype(np.float16) for _ in clips]
    poison = np.full((2, 128, 128), np.nan, dtype=np.float16)
    images = [[c, poison, c * np.float16(0.9)] for c in clean]
    test = np.array([i for i, c in enumerate(clips) if c.speaker == "c_00"])
    for i in test:
        images[i] = [clean[i], poison, poison]  # only the clean column of a test clip may be predicted
    train = np.setdiff1d(np.arange(len(clips)), test)
    with pytest.raises(ValueError, match="start with column 0"):
        cnn_training.CNNTrainer(images, clips, LABELS, train_cols=[2, 0])
    trainer = cnn_training.CNNTrainer(images, clips, LABELS, train_cols=[0, 2], groups=[c.path for c in clips],
                                      params={**TINY, "epochs": 1, "validation_speakers": 1})
    fitted = trainer.fit(train)
    assert np.isfinite(fitted.history["loss"]).all() and np.isfinite(fitted.history["val_loss"]).all()
    assert set(fitted.val_idx) < set(train) and fitted.history["validation_speakers"] == \
        sorted({clips[i].speaker for i in fitted.val_idx})
    P = trainer.proba(fitted.model, test)
    windows = np.concatenate([clean[i] for i in test]).astype(np.float32)
    raw = np.asarray(fitted.model.predict_on_batch(windows)).reshape(len(test), 2, -1).mean(axis=1)
    assert np.allclose(P, raw[:, [sorted(LABELS).index(lab) for lab in LABELS]], atol=1e-6)
    t, p_val, y_val = trainer.temperature(fitted)
    assert 0.05 <= t <= 20 and p_val.shape == (len(fitted.val_idx), len(LABELS))
    assert list(y_val) == [LABELS.index(clips[i].emotion) for i in fitted.val_idx]


@pytest.mark.slow
def _two_class_clips(folder) -> list[Clip]:
    """4 synthetic speakers x 8 clips, the emotion carried by pitch (two classes)."""
    import soundfile as sf

    clips = []
    for s in range(4):
        for i in range(8):
            emotion = LABELS[i % 2]  # two classes
            path = folder / f"s{s}_{i}.wav"
            sf.write(path, voice(130.0 if i % 2 == 0 else 800.0, 1.0 + 0.05 * i, seed=10 * s + i), SR)
            clips.append(Clip(str(path), emotion, f"syn_{s}", "female" if s % 2 else "male", "syn"))
    return clips


def test_train_cnn_end_to_end_on_a_synthetic_corpus(cnn, tmp_path, monkeypatch):
    """train_cnn: both protocols' metrics, history, and a recognizer that predicts files."""
    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))
    clips = _two_class_clips(tmp_path)
    rec, report = cnn_training.train_cnn(clips, params={**TINY, "validation_speakers": 1}, epochs=3, variants=("noise20dB",),
                                n_jobs=1)
    meta = rec.metadata
    assert set(meta["metrics"]) == {"speaker_independent", "stratified"}
    assert meta["metrics"]["speaker_independent"]["n_test"] == len(clips)
    assert len(meta["history"]["folds"]["speaker_independent"]) == 4
    assert len(meta["history"]["val_accuracy"]) == meta["history"]["epochs"] >= 1
    assert set(rec.oof) == {"speaker_independent", "stratified"}
    assert len(list((tmp_path / "cache" / "logmel").glob("*.npy"))) == 2 * len(clips)
    assert rec.predict(clips[0].path).label in {"neutral", "calm"}


def test_train_cnn_tests_its_fold_models_on_degraded_copies_it_never_trained_on(cnn, tmp_path, monkeypatch):
    """``test_conditions``: each speaker-independent fold model also predicts a degraded copy of its test
    clips (metadata "robustness", out-of-fold "speaker_independent@white5dB"); the copies are not among
    the images it trains on (each epoch shows the clip and its one augmented copy, not three)."""
    from ser.training.protocols import protocol_splits

    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))
    clips = _two_class_clips(tmp_path)
    rec, report = cnn_training.train_cnn(clips, params={**TINY, "validation_speakers": 1}, epochs=1,
                                         variants=("noise20dB",), test_conditions=("white5dB",), n_jobs=1)
    meta = rec.metadata
    assert set(meta["metrics"]) == {"speaker_independent", "stratified"} and set(meta["robustness"]) == {"white5dB"}
    noisy, clean = report.results["speaker_independent@white5dB"], report.results["speaker_independent"]
    assert np.array_equal(noisy.test_index, clean.test_index) and not np.allclose(noisy.proba, clean.proba)
    assert meta["robustness"]["white5dB"]["n_test"] == len(clips) and "speaker_independent@white5dB" in rec.oof
    for fold, test in zip(meta["history"]["folds"]["speaker_independent"],
                          protocol_splits(clips, "speaker_independent")):
        assert fold["train_images_per_epoch"] == 2 * (len(clips) - len(test[1]) - fold["val_clips"])
