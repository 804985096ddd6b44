"""A real (small) MLP run on RAVDESS: above chance on unseen actors; save/load and every input path agree."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from ser.audio.corpora import load_corpus
from ser.errors import ModelError
from ser.models.mlp import MLPRecognizer
from ser.models.base import Recognizer
from ser.training.mlp import train_mlp

ACTORS = [f"ravdess_{i:02d}" for i in range(1, 9)]


@pytest.fixture(scope="module")
def small_run(ravdess_dir, tmp_path_factory):
    clips = [c for c in load_corpus(ravdess_dir) if c.speaker in ACTORS]
    # A small network and no calibration fits keep this run to seconds on 2 cores.
    rec, report = train_mlp(clips, search=False, params={"hidden_layer_sizes": (128,)}, variants=("noise20dB",),
                            importance=True, calibrate=False, n_jobs=2)
    folder = rec.save_pretrained(tmp_path_factory.mktemp("models") / "mlp")
    return clips, rec, report, folder


def test_small_run_beats_chance_on_held_out_actors(small_run):
    clips, rec, report, _ = small_run
    si = report.metadata["metrics"]["speaker_independent"]
    chance = 1 / 8
    assert si["n_test"] == len(clips) == 480  # every clip tested once, by a model that never heard its actor
    assert si["accuracy"] > 2.5 * chance, si["accuracy"]
    assert report.metadata["metrics"]["stratified"]["n_test"] == pytest.approx(120, abs=2)
    assert set(report.metadata["feature_importance"]["speaker_independent"]) >= {"mfcc", "mel", "pitch"}
    pairs = si["error_analysis"]
    assert pairs and pairs[0]["count"] >= pairs[-1]["count"] and len(pairs[0]["examples"]) >= 1


def test_metadata_has_the_promised_keys(small_run):
    meta = small_run[1].metadata
    for key in ("model", "version", "params", "preprocessing", "data", "metrics", "library_versions", "files"):
        assert key in meta, key
    assert meta["model"] == "mlp" and meta["version"].startswith("v20")
    for protocol in ("speaker_independent", "stratified"):
        m = meta["metrics"][protocol]
        for key in ("accuracy", "macro_f1", "uar", "confusion", "labels", "protocol"):
            assert key in m, (protocol, key)
        assert np.array(m["confusion"]).sum() == m["n_test"]
    assert meta["data"]["speakers"] == 8 and meta["data"]["licences"] == {"ravdess": "CC BY-NC-SA 4.0"}
    assert meta["preprocessing"]["audio"]["sr"] == 16000


def test_save_load_identical_probabilities(small_run, ravdess_dir):
    clips, rec, _, folder = small_run
    loaded = Recognizer.from_pretrained(folder.parent.parent)
    assert isinstance(loaded, MLPRecognizer) and loaded.labels == rec.labels
    for c in clips[:5]:
        a, b = rec.predict(c.path), loaded.predict(c.path)
        assert a.probabilities == b.probabilities
    assert sum(a.probabilities.values()) == pytest.approx(1.0)
    for name in ("model.skops", "emotion_model.pkl", "scaler.pkl", "label_encoder.pkl", "config.json"):
        assert (folder / name).is_file()


def test_44k_stereo_copy_predicts_like_the_16k_mono_original(small_run, tmp_path):
    import soxr

    clips, rec, _, _ = small_run
    agree = 0
    for c in clips[::60]:
        y, sr = sf.read(c.path, dtype="float32")
        wide = soxr.resample(y, sr, 44100)
        path = tmp_path / "stereo.wav"
        sf.write(path, np.column_stack([wide, wide]), 44100, subtype="PCM_16")
        a, b = rec.predict(c.path), rec.predict(path)
        agree += a.label == b.label
        assert max(abs(a.probabilities[k] - b.probabilities[k]) for k in a.probabilities) < 0.15
    assert agree == len(clips[::60])


def test_gradio_tuple_and_bytes_paths_match_file_path(small_run):
    clips, rec, _, _ = small_run
    path = clips[3].path
    y, sr = sf.read(path, dtype="int16")
    via_file = rec.predict(path).probabilities
    via_tuple = rec.predict((sr, y)).probabilities
    with open(path, "rb") as f:
        via_bytes = rec.predict(f.read()).probabilities
    for k in via_file:
        assert via_tuple[k] == pytest.approx(via_file[k], abs=1e-4)
        assert via_bytes[k] == pytest.approx(via_file[k], abs=1e-6)


def test_untrusted_skops_content_is_refused(small_run, tmp_path):
    import shutil

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    _, _, _, folder = small_run
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    sio.dump(FunctionTransformer(func=np.exp), bad / "model.skops")  # a callable smuggled in
    from ser.hub.artifacts import _write_json, read_metadata
    from ser.audio.io import sha256_file

    meta = read_metadata(bad)
    meta["files"]["model.skops"] = sha256_file(bad / "model.skops")
    _write_json(bad / "metadata.json", meta)
    with pytest.raises(ModelError, match="outside ser.s trusted list|not a Pipeline"):
        Recognizer.from_pretrained(bad)


def test_mlp_path_and_cli_help_never_import_tensorflow():
    code = ("import sys, ser, ser.models, ser.training.mlp, ser.serving.service, ser.cli, ser.serving.batch; "
            "ser.cli.build_parser(); print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
