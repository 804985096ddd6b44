"""ser/models/mlp.py: the bundled MLP on real clips — save/load, skops trust, and every input path
(file, 44.1 kHz stereo, Gradio tuple, bytes) agreeing. (Its training: tests/test_training.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser.audio.corpora import load_corpus
from ser.errors import ModelError
from ser.models.base import Recognizer
from ser.models.mlp import MLPRecognizer

REPO = Path(__file__).resolve().parents[1]
ACTORS = [f"ravdess_{i:02d}" for i in range(1, 9)]


@pytest.fixture(scope="module")
def small_run(ravdess_dir, tmp_path_factory):
    """The bundled MLP, saved again as a new folder, and the clips of actors 1-8."""
    clips = [c for c in load_corpus(ravdess_dir) if c.speaker in ACTORS]
    rec = MLPRecognizer.from_pretrained(REPO / "models" / "mlp")
    folder = rec.save_pretrained(tmp_path_factory.mktemp("models") / "mlp")
    return clips, rec, None, folder


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
    for c in clips[::60]:
        y, sr = sf.read(c.path, dtype="float32")
        wide = soxr.resample(y, sr, 44100)
        path = tmp_path / "stereo.wav"
        sf.write(path, np.column_stack([wide, wide]), 44100, subtype="PCM_16")
        a, b = rec.predict(c.path), rec.predict(path)
        gap = max(abs(a.probabilities[k] - b.probabilities[k]) for k in a.probabilities)
        assert gap < 0.15, (c.path, gap)
        first, second = sorted(a.probabilities.values())[-2:][::-1]
        if first - second > 2 * gap:  # a clear answer stays the answer; a near tie may flip
            assert a.label == b.label, (c.path, a.probabilities, b.probabilities)


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
