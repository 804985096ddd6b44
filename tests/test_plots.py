"""ser/plots.py: every figure builder with small arrays — a new ``go.Figure``, the traces it promises,
its title, and non-finite values drawn as gaps (``None``), never passed to plotly as NaN."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest

from ser import plots
from ser.features.signal_math import analyze


def _title(fig: go.Figure) -> str:
    return fig.layout.title.text


def _types(fig: go.Figure) -> list[str]:
    return [t.type for t in fig.data]


def test_message_figure_states_why_there_is_nothing_to_plot():
    fig = plots.message_figure("No voiced frame in this clip.", title="Fundamental frequency")
    assert isinstance(fig, go.Figure) and len(fig.data) == 0
    assert _title(fig) == "Fundamental frequency"
    assert [a.text for a in fig.layout.annotations] == ["No voiced frame in this clip."]
    assert fig.layout.xaxis.visible is False and fig.layout.yaxis.visible is False


def test_spectrum_marks_peaks_and_only_finite_f0_lines():
    f = np.linspace(0, 8000, 5)
    fig = plots.spectrum_figure(f, [0.0, -10.0, np.nan, -30.0, -40.0], peaks_hz=[100.0, 200.0],
                                peaks_db=[-3.0, -6.0], f0_hz=100.0, f0_feature_hz=float("nan"))
    assert _types(fig) == ["scatter", "scatter"] and fig.data[1].mode == "markers"
    assert list(fig.data[0].y) == [0.0, -10.0, None, -30.0, -40.0]  # NaN is a gap
    assert len(fig.layout.shapes) == 1 and fig.layout.shapes[0].x0 == 100.0
    key = fig.layout.annotations[0].text
    assert "F0 (FFT) 100 Hz" in key and "yin" not in key and "peaks 100, 200 Hz" in key
    assert _title(fig) == "FFT magnitude spectrum"
    bare = plots.spectrum_figure(f, np.zeros(5))
    assert len(bare.data) == 1 and not bare.layout.annotations and not bare.layout.shapes


def test_pitch_tracks_leave_unvoiced_frames_as_gaps():
    fig = plots.pitch_figure([0.0, 0.01, 0.02], [120.0, np.nan, 125.0], [np.nan, 118.0, 124.0], title="F0")
    assert _types(fig) == ["scatter", "scatter"] and _title(fig) == "F0"
    assert list(fig.data[0].y) == [120.0, None, 125.0] and list(fig.data[1].y) == [None, 118.0, 124.0]
    assert fig.data[0].connectgaps is False


def test_spectrogram_colours_span_the_dynamic_range_below_the_peak():
    power = np.array([[-100.0, -20.0], [-50.0, np.inf]])
    fig = plots.spectrogram_figure([0.0, 0.008], [0.0, 8000.0], power, dynamic_range_db=60.0)
    (heat,) = fig.data
    assert heat.type == "heatmap" and (heat.zmin, heat.zmax) == (-80.0, -20.0)  # inf is not the peak
    assert heat.z[1][1] is None and _title(fig) == "STFT spectrogram"


def test_logmel_image_axes_are_mel_bands_and_seconds():
    fig = plots.logmel_figure(np.zeros((4, 5)), hop_s=0.01)
    (heat,) = fig.data
    assert heat.type == "heatmap" and (heat.zmin, heat.zmax) == (-1, 1)
    assert np.allclose(heat.x, [0.0, 0.01, 0.02, 0.03, 0.04]) and list(heat.y) == [0, 1, 2, 3]
    assert "128" in _title(fig)


def test_pole_zero_draws_the_unit_circle_poles_and_zeros_at_the_origin():
    r = 0.95
    fig = plots.pole_zero_figure([r, r], [0.3, -0.3], n_zeros_at_origin=4, title="z")
    circle, poles, zeros = fig.data
    assert circle.name == "|z| = 1" and np.allclose(np.hypot(circle.x, circle.y), 1.0)
    assert list(poles.x) == [r, r] and list(zeros.x) == [0.0] and list(zeros.y) == [0.0]
    assert [a.text for a in fig.layout.annotations] == ["4 zeros"]
    assert list(fig.layout.xaxis.range) == [-1.15, 1.15] and _title(fig) == "z"
    wide = plots.pole_zero_figure([2.0], [0.0])  # an unstable pole stays in view
    assert wide.layout.xaxis.range[1] == pytest.approx(2.2) and len(wide.data) == 2


def test_frequency_response_labels_finite_formants_by_their_number():
    f = [0.0, 1000.0, 2000.0]
    fig = plots.frequency_response_figure(f, [0.0, -5.0, -9.0], [1.0, -4.0, -10.0],
                                          formants_hz=[500.0, float("nan"), 1500.0])
    assert [t.name for t in fig.data] == ["frame spectrum", "|H(e^jω)|"]
    assert [a.text for a in fig.layout.annotations] == ["F1", "F3"] and len(fig.layout.shapes) == 2
    assert len(plots.frequency_response_figure(f, [0.0, 1.0, 2.0]).data) == 1


def test_s_plane_shows_poles_in_hz_and_names_formants():
    sigma, omega = np.array([-300.0, -300.0]), np.array([2 * math.pi * 700, -2 * math.pi * 700])
    fig = plots.s_plane_figure(sigma, omega, formant_sigma=[-300.0], formant_omega=[2 * math.pi * 700])
    poles, names = fig.data
    assert np.allclose(poles.y, [700.0, -700.0]) and list(names.text) == ["F1"]
    assert fig.layout.xaxis.range[0] < -300 < 0 < fig.layout.xaxis.range[1]
    assert "s = f_s · ln z" in _title(fig)


def test_responses_put_the_step_response_on_its_own_axis():
    t = np.linspace(0, 0.01, 5)
    fig = plots.responses_figure(t, np.exp(-t), 1 - np.exp(-t), n_t_s=t[::2], impulse_discrete=np.exp(-t[::2]))
    assert [d.name for d in fig.data] == ["h_c(t)", "h_d[n] / T", "step response"]
    assert fig.data[2].yaxis == "y2" and fig.data[0].yaxis in (None, "y")
    assert len(plots.responses_figure(t, t, t).data) == 2


def test_history_curves_mark_the_best_epoch_and_draw_each_folds_validation():
    run = {"accuracy": [0.2, 0.4, 0.5], "val_accuracy": [0.2, 0.3, 0.25], "loss": [2.0, 1.5, 1.2],
           "val_loss": [2.1, 1.8, 1.9], "best_epoch": 2}
    history = {**run, "folds": {"speaker_independent": [run, run]}}
    fig = plots.history_curves(history)
    assert len(fig.data) == 2 * 2 + 4
    assert {d.name for d in fig.data[-4:]} == {"training accuracy", "validation accuracy", "training loss",
                                                 "validation loss"}
    assert [s.x0 for s in fig.layout.shapes] == [2, 2] and "best epoch 2" in fig.layout.annotations[0].text
    assert len(plots.history_curves(history, folds=False).data) == 4
    assert _title(fig) == "CNN training curves"


def test_emotion_timeline_has_a_lane_per_label_and_shades_the_waveform():
    fig = plots.emotion_timeline_figure([0.0, 2.0, 4.0], [1.5, 3.0, 5.5], ["sad", "angry", "sad"], [0.9, 0.4, 0.7],
                                        labels=["angry", "sad", "happy"], duration_s=6.0,
                                        envelope_t=[0.0, 3.0, 6.0], envelope_min=[-0.5, -0.2, -0.1],
                                        envelope_max=[0.5, 0.2, 0.1])
    assert list(fig.layout.xaxis.range) == [0, 6.0]
    assert list(fig.layout.yaxis2.categoryarray) == ["happy", "sad", "angry"]  # lanes top to bottom
    markers = {d.name: d for d in fig.data if d.mode == "markers"}
    assert sorted(markers) == ["angry", "happy", "sad"]
    assert np.allclose(markers["sad"].x, [0.75, 4.75]) and len(markers["happy"].x) == 0
    assert [c[2] for c in markers["sad"].customdata] == [0.9, 0.7]
    assert sum(d.name.endswith("(waveform)") for d in fig.data) == 2  # shading for sad and angry only
    bare = plots.emotion_timeline_figure([0.0], [1.0], ["calm"], [0.5])
    assert bare.layout.yaxis.visible is False and not any("waveform" in d.name for d in bare.data)


def test_robustness_bars_are_percent_per_condition_with_chance():
    fig = plots.robustness_figure(["clean", "telephone"], {"standard": [0.6, 0.3], "robust": [0.58, 0.4]},
                                  chance=0.125)
    assert _types(fig) == ["bar", "bar"] and [d.name for d in fig.data] == ["standard", "robust"]
    assert np.allclose(fig.data[1].y, [58.0, 40.0]) and list(fig.data[0].x) == ["clean", "telephone"]
    assert fig.layout.shapes[0].y0 == pytest.approx(12.5) and fig.layout.barmode == "group"


def test_enrolment_curve_is_percent_per_k_with_spread_unadapted_and_chance():
    fig = plots.enrolment_curve([0, 4, 16], {"RAVDESS": [0.6, 0.62, float("nan")], "TESS": [0.3, 0.5, 0.55]},
                                std={"TESS": [0.0, 0.01, 0.02]}, unadapted={"RAVDESS": 0.6}, chance={"TESS": 1 / 7})
    assert _types(fig) == ["scatter", "scatter"] and [d.name for d in fig.data] == ["RAVDESS", "TESS"]
    assert list(fig.data[0].x) == [0, 4, 16] and fig.data[0].y[:2] == pytest.approx([60.0, 62.0])
    assert fig.data[0].y[2] is None  # not measured: a gap, not a zero
    assert fig.data[1].error_y.array == pytest.approx([0.0, 1.0, 2.0]) and fig.data[0].error_y.array is None
    assert [s.y0 for s in fig.layout.shapes] == pytest.approx([60.0, 100 / 7])
    assert "enrolment clips" in fig.layout.xaxis.title.text and list(fig.layout.xaxis.tickvals) == [0, 4, 16]


def test_reliability_diagram_skips_empty_bins_and_names_the_ece():
    before = [{"confidence": 0.9, "accuracy": 0.6, "count": 10}, {"confidence": None, "accuracy": None, "count": 0}]
    after = [{"confidence": 0.65, "accuracy": 0.6, "count": 10}]
    fig = plots.reliability_figure(before, after, ece_before=0.3, ece_after=0.05)
    assert [d.name for d in fig.data] == ["perfect calibration", "raw (ECE 0.300)", "calibrated (ECE 0.050)"]
    assert list(fig.data[1].x) == [0.9]
    assert len(plots.reliability_figure(before).data) == 2


def test_attribution_bars_are_signed_points_sorted_with_a_why_title():
    fig = plots.attribution_figure({"mfcc": 0.12, "pitch": -0.05, "energy": 0.01}, target="sad",
                                   names={"mfcc": "timbre (MFCC)"}, baseline=0.2, probability=0.6)
    (bar,) = fig.data
    assert list(bar.y) == ["pitch", "energy", "timbre (MFCC)"] and np.allclose(bar.x, [-5.0, 1.0, 12.0])
    assert list(bar.marker.color) == ["#d62728", "#2ca02c", "#2ca02c"]
    assert _title(fig) == "Why sad? (20 % at the average voice → 60 % for this clip)"


def test_occlusion_overlays_a_symmetric_saliency_map():
    sal = np.array([[0.1, -0.3], [0.0, 0.2]])
    fig = plots.occlusion_figure(np.zeros((2, 2)), sal, hop_s=0.5, target="angry")
    image, saliency = fig.data
    assert image.type == saliency.type == "heatmap" and (saliency.zmin, saliency.zmax) == (-0.3, 0.3)
    assert list(saliency.x) == [0.0, 0.5] and "angry" in _title(fig)


def test_probabilities_bar_outlines_the_top_emotion_and_draws_the_threshold():
    fig = plots.probabilities_bar({"neutral": 0.1, "sad": 0.6, "angry": 0.3}, threshold=0.35)
    (bar,) = fig.data
    assert list(bar.y) == ["neutral", "sad", "angry"] and list(bar.marker.line.width) == [0, 3, 0]
    assert list(bar.text) == ["10%", "60%", "30%"]
    assert fig.layout.shapes[0].x0 == 0.35 and "uncertain below 35%" in fig.layout.annotations[0].text
    assert not plots.probabilities_bar({"sad": 1.0}).layout.shapes


def test_confusion_matrix_colours_row_shares_and_writes_counts():
    fig = plots.confusion_matrix([[2, 1], [0, 0]], ["sad", "angry"])
    (heat,) = fig.data
    assert np.allclose(heat.z, [[2 / 3, 1 / 3], [0.0, 0.0]])  # an empty row is 0, not NaN
    assert np.array_equal(heat.text, [[2, 1], [0, 0]]) and list(heat.x) == ["sad", "angry"]


def test_importance_bar_puts_the_largest_drop_first():
    fig = plots.importance_bar({"mfcc": 0.02, "pitch": 0.08, "chroma": -0.01})
    assert list(fig.data[0].y) == ["pitch", "mfcc", "chroma"]


def test_signal_math_figures_builds_every_section():
    t = np.arange(16000) / 16000
    y = (0.3 * np.sign(np.sin(2 * np.pi * 130 * t)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    figs = plots.signal_math_figures(analyze(y))
    assert set(figs) == {"spectrum", "pitch", "spectrogram", "logmel", "pole_zero", "frequency_response",
                         "s_plane", "responses"}
    assert all(isinstance(f, go.Figure) and _title(f) for f in figs.values())


def test_every_public_builder_is_tested_here():
    tested = {name for name in globals() if name.startswith("test_")}
    source = open(__file__, encoding="utf-8").read()
    missing = [name for name in plots.__all__ if f"plots.{name}(" not in source]
    assert tested and not missing, missing
