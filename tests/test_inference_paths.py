"""Every entry point gives the same probabilities, on the REAL bundled models of ``models/``.

The one inference path is :meth:`ser.models.base.Recognizer.predict_proba_batch`; this checks
that the entry points built on it agree for the shipped MLP, CNN and ensemble (no stand-ins):

- ``ser.predict`` (one clip) against the batch CLI (``ser predict ... --out results.csv``, a batch
  of every clip in this process), within 1e-6 (the CSV keeps 6 decimals);
- the same CLI on 2 worker processes (``--jobs 2``, each loading the model from its folder) for the MLP;
- a timeline of a clip that is one voiced segment against ``ser.predict`` of that segment's audio.

The CNN loads TensorFlow once (about 5 s); the whole file runs in well under a minute.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

import ser
from ser import settings
from ser.audio.corpora import load_corpus
from ser.cli import main
from ser.models.registry import get_recognizer
from ser.serving import batch
from ser.serving.timeline import load_long, timeline_report

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "models"
EXAMPLES = sorted(str(p) for p in (REPO / "examples").glob("*.wav"))
KINDS = ("mlp", "cnn", "smile", "ensemble")
ATOL = 1e-6  # the CSV and the timeline round probabilities to 6 decimals (an error of at most 5e-7)


@pytest.fixture(scope="module", autouse=True)
def bundled_models():
    """Serve the bundled models whatever SER_MODELS_DIR says outside the test."""
    missing = [k for k in KINDS if not (BUNDLED / k / "config.json").is_file()]
    if missing:
        pytest.fail(f"bundled models missing: {missing}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SER_MODELS_DIR", str(BUNDLED))
        assert settings.models_dir() == BUNDLED
        yield


@pytest.fixture(scope="module")
def clips(ravdess_dir) -> list[str]:
    """The four example clips and four RAVDESS clips (four actors, four emotions)."""
    corpus = load_corpus(ravdess_dir)
    chosen, emotions = [], set()
    for c in corpus[::97]:
        if c.emotion not in emotions:
            chosen.append(c.path)
            emotions.add(c.emotion)
        if len(chosen) == 4:
            break
    return EXAMPLES + [str(p) for p in chosen]


def _direct(paths: list[str], kind: str) -> dict[str, dict[str, float]]:
    return {p: ser.predict(p, model=kind).probabilities for p in paths}


def _csv_probabilities(path: Path, labels: list[str]) -> dict[str, dict[str, float]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert all(r["error"] == "" for r in rows), [r["error"] for r in rows if r["error"]]
    out = {}
    for r in rows:
        probs = {lab: float(r[f"p_{lab}"]) for lab in labels}
        assert r["emotion"] == max(probs, key=probs.get)
        out[r["path"]] = probs
    return out


def _assert_same(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> None:
    assert sorted(a) == sorted(b)
    for path in a:
        gap = max(abs(a[path][lab] - b[path][lab]) for lab in a[path])
        assert gap <= ATOL, (path, gap, a[path], b[path])


def test_examples_and_bundled_models_are_there():
    assert len(EXAMPLES) == 4
    for kind in KINDS:
        rec = get_recognizer(kind)
        assert rec.kind == kind and rec.path is not None and rec.path.is_relative_to(BUNDLED / kind)
    # the ensemble's own temperature over raw member probabilities is what the batch path once skipped
    assert get_recognizer("ensemble").temperature is not None and get_recognizer("mlp").temperature is not None


@pytest.mark.parametrize("kind", KINDS)
def test_single_clip_and_batch_cli_give_the_same_probabilities(kind, clips, tmp_path, capsys):
    direct = _direct(clips, kind)
    out = tmp_path / f"{kind}.csv"
    assert main(["predict", *clips, "--model", kind, "--out", str(out), "--no-progress"]) == 0
    assert f"{len(clips)} predicted, 0 could not be read" in capsys.readouterr().err
    _assert_same(direct, _csv_probabilities(out, get_recognizer(kind).labels))


def test_mlp_on_two_worker_processes_gives_the_same_probabilities(clips, tmp_path, monkeypatch):
    jobs = []

    class Spy(batch.Parallel):
        def __init__(self, *args, **kwargs):
            jobs.append(kwargs.get("n_jobs"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(batch, "Parallel", Spy)
    out = tmp_path / "mlp_jobs2.csv"
    assert main(["predict", *clips, "--model", "mlp", "--out", str(out), "--no-progress",
                 "--jobs", "2", "--chunk", "2"]) == 0
    assert jobs == [2]  # the chunks went to worker processes, which load the model from its folder
    _assert_same(_direct(clips, "mlp"), _csv_probabilities(out, get_recognizer("mlp").labels))


@pytest.mark.parametrize("kind", KINDS)
def test_a_one_segment_timeline_predicts_the_segment_like_ser_predict(kind):
    rec = get_recognizer(kind)
    for path in EXAMPLES:
        report = timeline_report(path, kind)
        assert len(report["segments"]) == 1, (path, report["segments"])
        seg = report["segments"][0]
        y = load_long(path, sr=rec.audio["sr"])
        sr = int(rec.audio["sr"])
        audio = y[round(seg["start"] * sr): round(seg["end"] * sr)]
        direct = ser.predict((sr, audio), model=kind).probabilities
        gap = max(abs(direct[lab] - seg["probabilities"][lab]) for lab in rec.labels)
        assert gap <= ATOL, (path, gap)
        assert seg["emotion"] == max(direct, key=direct.get)
        assert np.isclose(sum(seg["probabilities"].values()), 1.0, atol=1e-5)
