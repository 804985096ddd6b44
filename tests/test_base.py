"""ser/models/base.py, the Recognizer contract: kinds register once, ``from_pretrained`` dispatches on
``config.json`` and refuses what it cannot load, ``predict_proba_batch`` is the one inference path
(shape, empty batch, rows independent of the batch, the temperature applied once), ``prediction``
and its threshold, ``predict`` loads audio with the model's own settings, save → load round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
from audio_cases import SR, speech_like

from ser.errors import ModelError
from ser.features.handcrafted import feature_names
from ser.models import base
from ser.models.base import AUDIO_DEFAULTS, MODEL_KINDS, Prediction, Recognizer, load_oof, save_oof
from ser.models.calibration import apply_temperature
from ser.models.cnn import CNNRecognizer
from ser.models.ensemble import EnsembleRecognizer
from ser.models.mlp import MLPRecognizer, fit_pipeline

LABELS = ["neutral", "sad", "angry"]


@pytest.fixture
def echo(monkeypatch):
    """A stand-in kind ``echo``, registered for this test only: probabilities from a clip's loudness
    and length (softmax of ``weights @ [rms, seconds, 1]``); it remembers the lengths it was given."""
    monkeypatch.setattr(Recognizer, "_kinds", dict(Recognizer._kinds))
    monkeypatch.setattr(base, "MODEL_KINDS", (*MODEL_KINDS, "echo"))

    class EchoRecognizer(Recognizer):
        kind = "echo"

        def __init__(self, *, weights, **kwargs):
            super().__init__(**kwargs)
            self.weights = np.asarray(weights, dtype=np.float64)
            self.seen: list[int] = []

        def raw_proba_batch(self, ys):
            self.seen += [len(y) for y in ys]
            f = np.array([[np.sqrt(np.mean(np.square(y, dtype=np.float64))), len(y) / SR, 1.0] for y in ys])
            z = f @ self.weights.T
            e = np.exp(z - z.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

        def config(self):
            return {**super().config(), "weights": self.weights.tolist()}

        def _write(self, folder):
            np.save(folder / "weights.npy", self.weights)

        @classmethod
        def _read(cls, folder, config, metadata):
            return cls(weights=np.load(folder / "weights.npy"), labels=config["labels"], audio=config.get("audio"),
                       metadata=metadata, temperature=config.get("temperature"))

    return EchoRecognizer


def _echo(cls, **kwargs):
    weights = [[-8.0, 0.5, 0.3], [2.0, -0.4, 0.1], [9.0, 0.2, -0.5]]  # loud → angry, quiet → neutral
    return cls(weights=weights, labels=LABELS, **kwargs)


@pytest.fixture(scope="module")
def tiny_mlp():
    """A real MLPRecognizer on synthetic feature rows (the model is bad; the contract is what is tested)."""
    rng = np.random.default_rng(0)
    n_features = len(feature_names())
    X = rng.normal(size=(60, n_features))
    y = np.repeat(LABELS, 20)
    X[y == "angry", :5] += 3.0
    pipeline = fit_pipeline(X, y, hidden_layer_sizes=(8,), batch_size=16)
    return MLPRecognizer(pipeline, labels=LABELS, metadata={"params": {"note": "test"}})


def clips():
    return [speech_like(1.2, f0=120.0, peak=0.1), speech_like(2.0, f0=200.0, peak=0.7), speech_like(0.9, peak=0.4)]


# -- kinds ------------------------------------------------------------------------------------------
def test_the_shipped_kinds_are_registered_to_their_classes():
    for kind, cls in (("mlp", MLPRecognizer), ("cnn", CNNRecognizer), ("ensemble", EnsembleRecognizer)):
        assert kind in MODEL_KINDS and cls.kind == kind
        assert Recognizer.implementation(kind) is cls


def test_a_later_subclass_never_replaces_a_registered_kind(monkeypatch):
    monkeypatch.setattr(Recognizer, "_kinds", dict(Recognizer._kinds))

    class Impostor(MLPRecognizer):  # e.g. a test's stand-in naming the same kind
        kind = "mlp"

    assert Recognizer.implementation("mlp") is MLPRecognizer


@pytest.mark.parametrize("kind", ["svm", None, ""])
def test_an_unknown_kind_is_a_model_error_naming_the_known_ones(kind):
    with pytest.raises(ModelError, match="Unknown model_type") as e:
        Recognizer.implementation(kind)
    assert all(k in str(e.value) for k in ("mlp", "cnn", "ensemble"))


def test_a_registered_kind_must_also_be_a_known_model_type(echo, monkeypatch):
    assert Recognizer.implementation("echo") is echo
    monkeypatch.setattr(base, "MODEL_KINDS", MODEL_KINDS)
    with pytest.raises(ModelError, match="Unknown model_type 'echo'"):
        Recognizer.implementation("echo")


# -- from_pretrained ---------------------------------------------------------------------------------
def test_from_pretrained_dispatches_on_config_json(echo, tmp_path):
    rec = _echo(echo, temperature=1.7, metadata={"note": "kept"})
    folder = rec.save_pretrained(tmp_path / "echo")
    assert rec.path == folder and rec.metadata["version"] == folder.name
    config = json.loads((folder / "config.json").read_text())
    assert config == json.loads(json.dumps(rec.config())) and config["model_type"] == "echo"

    loaded = Recognizer.from_pretrained(tmp_path / "echo")
    assert type(loaded) is echo and loaded.metadata["version"] == folder.name and not loaded.warnings
    assert loaded.labels == LABELS and loaded.temperature == 1.7 and loaded.audio == AUDIO_DEFAULTS
    assert np.array_equal(loaded.weights, rec.weights)
    assert loaded.metadata["note"] == "kept" and loaded.metadata["model"] == "echo"
    assert type(echo.from_pretrained(folder)) is echo  # a version folder loads as well


def test_from_pretrained_through_another_kinds_class_is_refused(echo, tmp_path):
    _echo(echo).save_pretrained(tmp_path / "echo")
    with pytest.raises(ModelError, match="holds a echo model, not mlp"):
        MLPRecognizer.from_pretrained(tmp_path / "echo")


def test_from_pretrained_of_nothing_is_a_model_error(tmp_path):
    with pytest.raises(ModelError):
        Recognizer.from_pretrained(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError):
        Recognizer.from_pretrained(tmp_path / "empty")


def test_an_unknown_model_type_on_disk_is_refused(echo, tmp_path, monkeypatch):
    _echo(echo).save_pretrained(tmp_path / "echo")
    monkeypatch.setattr(base, "MODEL_KINDS", MODEL_KINDS)  # this ser does not know "echo"
    with pytest.raises(ModelError, match="Unknown model_type 'echo' in config.json"):
        Recognizer.from_pretrained(tmp_path / "echo")


def test_save_load_round_trip_of_a_real_mlp_gives_identical_probabilities(tiny_mlp, tmp_path):
    folder = tiny_mlp.save_pretrained(tmp_path / "mlp")
    loaded = Recognizer.from_pretrained(tmp_path / "mlp")
    assert isinstance(loaded, MLPRecognizer) and loaded.labels == tiny_mlp.labels
    assert loaded.metadata["version"] == folder.name
    assert np.array_equal(loaded.predict_proba_batch(clips()), tiny_mlp.predict_proba_batch(clips()))
    assert json.loads((folder / "config.json").read_text()) == json.loads(json.dumps(tiny_mlp.config()))


def test_feature_settings_from_a_newer_ser_are_a_model_error_naming_them(tiny_mlp):
    features = {**tiny_mlp.config()["features"], "future_setting": 1.0}  # as read from its config.json
    with pytest.raises(ModelError, match="future_setting"):
        MLPRecognizer(tiny_mlp.pipeline, features=features, labels=tiny_mlp.labels)


# -- the one inference path ---------------------------------------------------------------------------
def test_an_empty_batch_has_no_rows_but_every_column(echo, tiny_mlp):
    for rec in (_echo(echo), tiny_mlp):
        P = rec.predict_proba_batch([])
        assert P.shape == (0, len(LABELS)) and P.dtype == np.float64


def test_batch_rows_follow_labels_sum_to_one_and_do_not_depend_on_the_batch(echo, tiny_mlp):
    ys = clips()
    for rec in (_echo(echo, temperature=1.5), tiny_mlp):
        P = rec.predict_proba_batch(ys)
        assert P.shape == (len(ys), len(LABELS)) and P.dtype == np.float64
        assert np.allclose(P.sum(axis=1), 1.0)
        singles = np.stack([rec.predict_proba(y) for y in ys])
        assert np.array_equal(P, singles)  # exactly: a batch CSV row is its clip's ser.predict
        assert np.array_equal(rec.predict_proba_batch(ys[::-1]), P[::-1])


def test_the_temperature_is_applied_once_by_the_base_class(echo):
    ys = clips()
    raw = _echo(echo).predict_proba_batch(ys)
    assert np.array_equal(raw, _echo(echo).raw_proba_batch(ys))  # no temperature: raw probabilities
    for t in (0.5, 2.0):
        P = _echo(echo, temperature=t).predict_proba_batch(ys)
        assert np.allclose(P, apply_temperature(raw, t), atol=1e-12)
        assert np.array_equal(P.argmax(axis=1), raw.argmax(axis=1))
    assert not np.allclose(_echo(echo, temperature=2.0).predict_proba_batch(ys), raw)


# -- predictions -------------------------------------------------------------------------------------
def test_prediction_names_the_top_label_and_flags_uncertainty(echo, monkeypatch):
    rec = _echo(echo, metadata={"version": "v1"})
    rec.warnings = ["loaded the previous version"]
    p = rec.prediction(np.array([0.2, 0.5, 0.3]))
    assert isinstance(p, Prediction)
    assert (p.label, p.confidence, p.uncertain, p.model, p.version) == ("sad", 0.5, False, "echo", "v1")
    assert list(p.probabilities) == LABELS and p.probabilities["angry"] == 0.3
    assert p.warnings == rec.warnings and p.warnings is not rec.warnings
    assert rec.prediction(np.array([0.2, 0.5, 0.3]), threshold=0.6).uncertain is True
    monkeypatch.setenv("SER_UNCERTAIN_BELOW", "0.55")  # the default threshold is the setting
    assert rec.prediction(np.array([0.2, 0.5, 0.3])).uncertain is True
    assert set(p.to_dict()) == {"label", "confidence", "probabilities", "uncertain", "model", "version", "warnings",
                                "adapted"}


def test_predict_loads_audio_with_the_models_own_settings(echo):
    y = speech_like(2.0, lead_s=0.5)  # 1 s of voice between 0.5 s of silence
    trimmed = _echo(echo)
    p = trimmed.predict((SR, y))
    assert trimmed.seen[-1] < len(y) - SR // 2  # silence trimmed, as training clips were
    assert p.label == trimmed.prediction(trimmed.predict_proba(trimmed.load((SR, y)))).label

    untrimmed = _echo(echo, audio={"trim": False})
    untrimmed.predict((SR, y))
    assert untrimmed.seen[-1] == len(y)

    loud = speech_like(1.0, peak=0.9)
    at_44k = np.interp(np.arange(0, len(loud), SR / 44_100), np.arange(len(loud)), loud).astype(np.float32)
    trimmed.predict((SR, loud))
    trimmed.predict((44_100, at_44k))  # resampled to the model's 16 kHz before anything else
    assert abs(trimmed.seen[-1] - trimmed.seen[-2]) <= 256


def test_push_needs_a_saved_model(echo):
    with pytest.raises(ModelError, match="save_pretrained"):
        _echo(echo).push_to_hub("you/echo")


def test_out_of_fold_predictions_round_trip(tmp_path):
    oof = {"speaker_independent": {"clip_ids": ["a", "b"], "proba": np.array([[0.2, 0.8], [0.6, 0.4]]),
                                   "labels": ["sad", "angry"]}}
    save_oof(tmp_path / "oof.npz", oof)
    back = load_oof(tmp_path / "oof.npz")
    assert back["speaker_independent"]["clip_ids"] == ["a", "b"]
    assert back["speaker_independent"]["labels"] == ["sad", "angry"]
    assert np.allclose(back["speaker_independent"]["proba"], oof["speaker_independent"]["proba"])
