"""ser.serving.presentation: what the page shows of each API value, checked without a server."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from ser import reports
from ser.errors import ParameterError
from ser.serving import presentation as view

LABELS = ["calm", "sad", "angry"]


def prediction(**over) -> dict:
    base = {"label": "angry", "confidence": 0.45, "uncertain": False, "threshold": 0.35,
            "probabilities": {"calm": 0.3, "sad": 0.25, "angry": 0.45}, "model": "mlp", "version": "v1",
            "warnings": []}
    return {**base, **over}


def metrics(**over) -> dict:
    m = {"accuracy": 0.5, "uar": 0.45, "macro_f1": 0.4, "macro_precision": 0.5, "n_test": 10,
         "confusion": np.eye(len(LABELS), dtype=int).tolist(), "labels": LABELS, "protocol": "in words",
         "error_analysis": [{"pair": ["calm", "sad"], "count": 3, "a_as_b": 2, "b_as_a": 1}]}
    return {**m, **over}


def test_intro_and_accepted_note():
    assert "public" not in view.intro(public=False)
    assert "need the admin token" in view.intro(public=True)
    note = view.accepted_note("WAV or FLAC", max_bytes=100 * 2**20, uncertain_below=0.35)
    assert note == "Accepted: WAV or FLAC; up to 100 MiB. A result below 35% is reported as uncertain."


def test_a_confident_prediction():
    v = view.prediction_view(prediction())
    assert v.title == "Emotion" and v.verdict.startswith("### Angry\nConfidence 45% (MLP v1)")
    assert v.probabilities == {"calm": 0.3, "sad": 0.25, "angry": 0.45}
    assert isinstance(v.figure, go.Figure) and "Probability of each emotion" in v.figure.layout.title.text


def test_an_uncertain_prediction_with_warnings():
    v = view.prediction_view(prediction(confidence=0.3, uncertain=True, warnings=["…/v2/model.skops is corrupt"]))
    assert v.title == "Emotion (uncertain)"
    assert v.verdict.startswith("### Uncertain\nThe most likely emotion, **angry**, has only 30% (below the 35% "
                                "threshold)")
    assert v.verdict.endswith("⚠ …/v2/model.skops is corrupt")


def test_an_adapted_prediction_is_marked_and_one_that_could_not_adapt_says_why():
    adapted = view.prediction_view(prediction(adaptation={"adapted": True, "n_clips": 8,
                                                          "note": "adapted to your voice (8 clips)"}))
    assert adapted.title == "Emotion, adapted to your voice" and "✔ adapted to your voice (8 clips)" in adapted.verdict
    note = "not adapted: the MLP model cannot adapt to a voice"
    plain = view.prediction_view(prediction(adaptation={"adapted": False, "n_clips": 8, "note": note}))
    assert plain.title == "Emotion" and f"ℹ {note}" in plain.verdict
    assert "adapted" not in view.prediction_view(prediction(adaptation={"adapted": False, "note": ""})).verdict
    probs, status = view.live_view({"status": "speech", "time_s": 2, "probabilities": {"sad": 1.0},
                                    "adaptation": {"adapted": True, "note": "adapted to your voice (4 clips)"}})
    assert status == "Speech · 2 s · ✔ adapted to your voice (4 clips)"
    assert view.enrolment_view({"n_clips": 0, "message": "none"}) == ("none", False)
    assert view.enrolment_view({"n_clips": 3, "message": "3 of 4"}) == ("3 of 4", True)


def timeline_result(duration_s: float, n: int) -> dict:
    segs = [{"start": 2.0 * i, "end": 2.0 * i + 1.5, "emotion": "sad" if i % 2 else "calm", "confidence": 0.6,
             "uncertain": False, "probabilities": {"calm": 0.4, "sad": 0.6, "angry": 0.0}} for i in range(n)]
    return {"segments": segs, "labels": LABELS, "duration_s": duration_s, "envelope": None,
            "summary": {"dominant": "sad" if n else None, "voiced_s": 1.5 * n,
                        "seconds": {"calm": 1.5 * ((n + 1) // 2), "sad": 1.5 * (n // 2), "angry": 0.0}}}


def test_timeline_is_drawn_only_for_long_recordings_with_several_segments():
    assert view.timeline_view(timeline_result(20.0, 0), min_s=6.0) == (None, "No voiced segment was found for a "
                                                                           "timeline.")
    fig, note = view.timeline_view(timeline_result(3.0, 2), min_s=6.0)
    assert fig is None and note == "The recording lasts 3.0 s: one label covers it (a timeline is drawn from 6 s)."
    fig, note = view.timeline_view(timeline_result(20.0, 4), min_s=6.0)
    assert isinstance(fig, go.Figure)
    assert note == "**Dominant: sad** over 4 voiced segments (6.0 s of voice: calm 3.0 s, sad 3.0 s)."


def test_training_uses_the_one_metrics_table():
    labels_only = {"model": "mlp", "version": "v1", "data": {"clips": 10, "speakers": 2},
                   "metrics": {"speaker_independent": metrics(), "stratified": metrics(accuracy=0.75)}}
    md, cm_si, cm_st, extra, errors = view.training_view(
        {**labels_only, "feature_importance": {"speaker_independent": {"mfcc": 0.1, "pitch": 0.02}}})
    assert md.startswith("### Saved MLP v1\nTrained on 10 clips of 2 speakers; now serving predictions.")
    assert reports.protocol_table(labels_only) in md  # the README's, the CLI's and the cards' formatter
    assert "| stratified 75/25 clip split | 0.750 | 0.450 | 0.400 | 10 |" in md
    assert "- **speaker-independent (6 folds by actor)**: in words" in md
    assert "Confusion: speaker independent" in cm_si.layout.title.text and "stratified" in cm_st.layout.title.text
    assert "permuted" in extra.layout.title.text
    assert errors == ("### Most confused pairs\n- speaker independent: **calm ↔ sad**, 3 clips (calm as sad: 2, "
                      "sad as calm: 1)\n- stratified: **calm ↔ sad**, 3 clips (calm as sad: 2, sad as calm: 1)")
    curves = {"loss": [1.0, 0.8], "val_loss": [1.1, 0.9], "accuracy": [0.3, 0.4], "val_accuracy": [0.2, 0.3],
              "best_epoch": 2, "folds": {"stratified": [{"val_loss": [1.2, 1.0], "val_accuracy": [0.2, 0.25]}]}}
    _, _, _, extra, _ = view.training_view({**labels_only, "model": "cnn", "history": curves})
    assert "curves" in extra.layout.title.text
    md, _, cm_st, extra, errors = view.training_view({"model": "mlp", "metrics": {"speaker_independent": metrics(
        error_analysis=[])}})
    assert cm_st.layout.annotations[0].text == "No stratified protocol in this run."
    assert "not computed" in extra.layout.annotations[0].text and errors == "### Most confused pairs\nnone"


def test_models_table_rows_serving_line_and_choices():
    listing = {"serving": {"mlp": "v2", "cnn": None, "ensemble": None}, "versions": [
        {"model": "mlp", "version": "v2", "created": "2026-11-25", "ok": True, "error": None, "serving": True,
         "speaker_independent": {"accuracy": 0.5531, "uar": 0.5444}, "stratified": {"accuracy": 0.742, "uar": None},
         "data": {"clips": 1440, "speakers": 24}},
        {"model": "mlp", "version": "v1", "created": None, "ok": False, "error": "…/v1/model.skops is corrupt",
         "serving": False, "speaker_independent": None, "stratified": None, "data": None}]}
    rows, serving, choices = view.models_view(listing)
    assert [len(r) for r in rows] == [len(view.VERSION_COLUMNS)] * 2
    assert rows[0] == ["mlp", "v2", "2026-11-25", "✔", 0.553, 0.544, 0.742, None, 1440, 24, "ok"]
    assert rows[1][-1] == "damaged: …/v1/model.skops is corrupt" and rows[1][3] == ""
    assert serving == "**Serving** — mlp: v2, cnn: not loaded yet, ensemble: not loaded yet"
    assert choices == ["", "v2"]  # a damaged version cannot be chosen


def test_batch_table_and_what_it_refuses():
    rows = [{"file": "a.wav", "emotion": "sad", "error": ""}, {"file": "b.wav", "emotion": "", "error": "not audio"}]
    assert view.batch_table(rows) == (["file", "emotion", "error"], [["a.wav", "sad", ""], ["b.wav", "", "not audio"]])
    assert view.batch_table([]) == ([], [])
    for bad in (None, "rows", [1, 2], {"file": "a.wav"}):
        with pytest.raises(ParameterError, match="Expected the rows of /predict_batch"):
            view.batch_table(bad)


def test_live_updates_and_their_end():
    probs, status = view.live_view({"status": "speech", "time_s": 4.4, "probabilities": {"sad": 0.7, "calm": 0.3}})
    assert probs == {"sad": 0.7, "calm": 0.3} and status == "Speech · 4 s"
    assert view.live_view({"status": "listening", "time_s": 0.5, "probabilities": None}) == ({}, "Listening · 0 s")
    assert view.live_stopped({"duration_s": 12.2, "emotions": {}}) == "Stopped after 12 s (nothing voiced)."
    assert view.live_stopped({"duration_s": 3, "emotions": {"sad": 2}}) == "Stopped after 3 s ({'sad': 2})."


def test_analysis_numbers_and_figures():
    from ser.features.signal_math import analyze

    t = np.arange(16_000) / 16_000
    y = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    numbers, figures = view.analysis_view(analyze(y, sr=16_000))
    assert numbers.startswith("**Clip**: 1.00 s at 16000 Hz") and "**Parseval**" in numbers
    assert len(figures) == len(view.MATH_FIGURES) and all(isinstance(f, go.Figure) for f in figures)
    assert "FFT of the whole clip" in figures[0].layout.title.text


def test_timeline_note_says_how_it_was_adapted():
    r = {**timeline_result(20.0, 4), "adaptation": {"adapted": True, "source": "self", "n_clips": 4,
                                                    "note": "adapted to the recording's own voice (4 segments)"}}
    fig, note = view.timeline_view(r, min_s=6.0)
    assert fig is not None and note.endswith("✔ adapted to the recording's own voice (4 segments)")


def test_the_enrolment_curve_comes_from_the_stored_study():
    fig = view.enrolment_study_view()
    assert isinstance(fig, go.Figure) and "UAR against k random enrolment clips" in fig.layout.title.text
    study = reports.load_report(reports.ENROLMENT)["kinds"]["smile"]["ravdess"]["results"]["smile"]
    assert fig.data[0].x[0] == 0 and fig.data[0].y[0] == pytest.approx(100 * study["k0"]["uar"])
    assert fig.data[0].y[-1] == pytest.approx(100 * study["random"]["32"]["served"]["uar"])


def test_studies_view_reads_the_stored_reports():
    robustness, rel_mlp, rel_cnn, md = view.studies_view()
    assert all(isinstance(f, go.Figure) for f in (robustness, rel_mlp, rel_cnn))
    assert md.startswith(reports.STUDIES_NOTE)
