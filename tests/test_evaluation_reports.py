"""Tables and charts from reports/*.json: rendered from the stored numbers, robust to a missing report."""

from __future__ import annotations

import json

import pytest

from ser import evaluation_reports as er


def _m(acc, uar, labels):
    return {"accuracy": acc, "uar": uar, "labels_present": labels, "n_test": 10}


SEVEN = ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
EIGHT = ["neutral", "calm"] + SEVEN[1:]
CROSS = {"results": {
    "within:ravdess": {"raw": {"labels": EIGHT, "chance_uar": 1 / 8, "by_corpus": {"ravdess": _m(0.5, 0.49, EIGHT)}},
                       "speaker_norm": {"labels": EIGHT, "chance_uar": 1 / 8, "by_corpus": {"ravdess": _m(0.6, 0.59, EIGHT)}}},
    "ravdess→tess": {"raw": {"labels": SEVEN, "chance_uar": 1 / 7, "by_corpus": {"tess": _m(0.4, 0.41, SEVEN)}}},
    "multi:ravdess+tess": {"raw": {"labels": EIGHT, "chance_uar": 1 / 8,
                                   "by_corpus": {"ravdess": _m(0.52, 0.5, EIGHT), "tess": _m(0.8, 0.8, SEVEN)}}},
}}
ROB = {"chance_uar": 0.125, "results": {
    "standard": {"clean": {"accuracy": 0.55}, "telephone": {"accuracy": 0.30}},
    "robust": {"clean": {"accuracy": 0.548}, "telephone": {"accuracy": 0.50}}},
    "decision": {"clean_accuracy_drop_points": 0.2, "keep_robust_training": True, "rule": "at most 1 point"}}


def test_crosscorpus_table_states_chance_and_emotions_per_pair():
    table = er.crosscorpus_table(CROSS)
    lines = table.splitlines()
    assert len(lines) == 2 + 1 + 1 + 2
    assert "| RAVDESS → TESS | 7 (no calm) | 14.3 | 40.0 | 41.0 | – | – |" in lines
    assert any(line.startswith("| RAVDESS → RAVDESS (unseen speakers) | 8 | 12.5 | 50.0 | 49.0 | 60.0 | 59.0 |")
               for line in lines)
    assert any("RAVDESS + TESS → TESS (unseen speakers) | 7 (no calm); model has 8 | 12.5 | 80.0" in line for line in lines)


def test_robustness_table_and_decision():
    table = er.robustness_table(ROB)
    assert "| telephone | 30.0 (-25.0) | 50.0 (-4.8) |" in table
    assert "kept" in table and "-0.2 points" in table


def test_missing_reports_say_how_to_make_them(tmp_path, monkeypatch):
    monkeypatch.setenv("SER_REPORTS_DIR", str(tmp_path))
    assert "bench/crosscorpus.py" in er.crosscorpus_table()
    assert "bench/robustness.py" in er.robustness_table()
    assert "No robustness report" in er.robustness_chart().layout.annotations[0].text
    (tmp_path / "robustness.json").write_text(json.dumps(ROB))
    fig = er.robustness_chart()
    assert [t.name for t in fig.data] == ["standard training", "robust training"]
    assert list(fig.data[1].y) == pytest.approx([54.8, 50.0])
    (tmp_path / "calibration.json").write_text("{not json")
    assert er.load_report("calibration.json") is None
