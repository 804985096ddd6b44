"""ser.timeline: long recordings as emotion segments, exports, the figure, and the live stream."""

from __future__ import annotations

import copy
import csv
import io
import json

import numpy as np
import plotly.graph_objects as go
import pytest
import soundfile as sf
from tiny_model import long_recording, ravdess_files, tiny_models_root

from ser.serving import timeline as tl
from ser.audio import vad
from ser.audio.io import load_audio, resample
from ser.errors import AudioError

SR = 16_000
KEYS = {"start", "end", "emotion", "confidence", "uncertain", "probabilities"}


@pytest.fixture(scope="module")
def rec(ravdess_dir):
    from ser.models.base import Recognizer

    return Recognizer.from_pretrained(tiny_models_root(ravdess_dir) / "mlp")


@pytest.fixture(scope="module")
def recording(ravdess_dir):
    files = ravdess_files(ravdess_dir, "05", 6)
    return long_recording(files, gaps_s=[1.2, 0.7, 2.5, 0.9, 1.4, 0.6])


def test_one_segment_per_sentence_with_consistent_probabilities(rec, recording):
    y, spans = recording
    segments = tl.timeline(y, rec, sr=SR)
    assert [tuple(s) for s in vad.voiced_segments(y, sr=SR)] == [(s["start"], s["end"]) for s in segments]
    assert len(segments) == len(spans)
    for s, (a, b) in zip(segments, spans):
        assert set(s) == KEYS
        assert a - 0.05 <= s["start"] < s["end"] <= b + 0.25
        p = s["probabilities"]
        assert list(p) == rec.labels and sum(p.values()) == pytest.approx(1.0, abs=1e-5)
        assert s["emotion"] == max(p, key=p.get) and s["confidence"] == p[s["emotion"]]
        assert s["uncertain"] == (s["confidence"] < 0.35)


def test_batched_windows_equal_one_by_one_predictions(rec, recording):
    """Each segment gets what predicting its audio as a clip of its own gives (loaded as any clip:
    DC offset removed, trimmed), though all segments go through the network in one batch."""
    y, _ = recording
    segments = tl.timeline(y, rec, sr=SR, threshold=0.5)
    for s in segments:
        alone = rec.predict((SR, y[round(s["start"] * SR): round(s["end"] * SR)]), threshold=0.5)
        assert alone.label == s["emotion"] and alone.uncertain == s["uncertain"]
        assert alone.probabilities == pytest.approx(s["probabilities"], abs=2e-6)


def test_report_from_a_file_equals_report_from_an_array_and_exports_round_trip(rec, recording, tmp_path):
    y, _ = recording
    path = tmp_path / "long.wav"
    sf.write(path, y, SR, subtype="FLOAT")
    from_file = tl.timeline_report(path, rec)
    from_array = tl.timeline_report(y, rec, sr=SR)
    assert from_file["segments"] == from_array["segments"]
    r = from_file
    assert r["model"] == "mlp" and r["labels"] == rec.labels and r["duration_s"] == pytest.approx(len(y) / SR, abs=1e-3)
    assert r["vad"]["method"] == vad.default_method() and r["speed"] > 0
    assert r["summary"]["dominant"] in rec.labels
    assert r["summary"]["voiced_s"] == pytest.approx(sum(s["end"] - s["start"] for s in r["segments"]), abs=1e-3)
    assert len(r["envelope"]["t"]) <= tl.ENVELOPE_POINTS and len(r["envelope"]["min"]) == len(r["envelope"]["t"])
    json.dumps(r)  # JSON-friendly as the API returns it

    rows = list(csv.DictReader(io.StringIO(tl.to_csv(r))))
    assert len(rows) == len(r["segments"])
    assert list(rows[0]) == ["start", "end", "emotion", "confidence", "uncertain", *(f"p_{k}" for k in rec.labels)]
    assert float(rows[0]["start"]) == r["segments"][0]["start"] and rows[0]["emotion"] == r["segments"][0]["emotion"]
    back = json.loads(tl.to_json(r))
    assert back["segments"] == r["segments"] and "envelope" not in back
    csv_path, json_path = tl.export_files(r, tmp_path / "out")
    assert csv_path.read_text() == tl.to_csv(r) and json.loads(json_path.read_text())["labels"] == rec.labels
    assert tl.to_csv(r["segments"]) == tl.to_csv(r)  # the bare list works too


def test_long_audio_has_its_own_duration_limit(rec, recording, tmp_path, monkeypatch):
    y, _ = recording
    path = tmp_path / "long.wav"
    sf.write(path, y, SR, subtype="PCM_16")
    monkeypatch.setenv("SER_MAX_DURATION_S", "5")  # one prediction: 5 s at most
    with pytest.raises(AudioError, match="long"):
        load_audio(path)
    assert tl.timeline_report(path, rec)["segments"]  # a timeline: SER_MAX_TIMELINE_S (2 h)
    monkeypatch.setenv("SER_MAX_TIMELINE_S", "10")
    with pytest.raises(AudioError, match="long"):
        tl.timeline_report(path, rec)


def test_noise_only_gives_no_segments_and_silence_is_refused(rec):
    noise = (1e-3 * np.random.default_rng(0).standard_normal(5 * SR)).astype(np.float32)
    r = tl.timeline_report(noise, rec, sr=SR)
    assert r["segments"] == [] and r["summary"]["dominant"] is None
    assert tl.to_csv(r).count("\n") == 1
    with pytest.raises(AudioError, match="silent"):
        tl.timeline_report((SR, np.zeros(5 * SR, np.float32)), rec)
    with pytest.raises(AudioError, match="sample rate"):
        tl.timeline_report(noise, rec)


def test_other_rates_are_resampled_to_the_models(rec, recording):
    y, _ = recording
    y44 = resample(y, orig_sr=SR, sr=44_100)
    a = tl.timeline(y, rec, sr=SR)
    b = tl.timeline(y44, rec, sr=44_100)
    assert len(a) == len(b)
    assert [s["start"] for s in a] == pytest.approx([s["start"] for s in b], abs=0.07)
    assert [s["end"] for s in a] == pytest.approx([s["end"] for s in b], abs=0.07)
    assert all(s["emotion"] in rec.labels for s in b)  # (a 48-clip model is too touchy to compare labels)


def test_figure_aligns_lanes_with_the_waveform(rec, recording):
    y, _ = recording
    r = tl.timeline_report(y, rec, sr=SR)
    fig = tl.figure(r)
    assert isinstance(fig, go.Figure) and "voiced segments" in fig.layout.title.text
    lanes = [t for t in fig.data if t.yaxis == "y2"]
    assert {t.name for t in lanes} <= set(rec.labels) and all(t.xaxis == "x" for t in fig.data)
    assert sum(len(t.x) for t in lanes if t.mode == "markers") == len(r["segments"])
    assert any(t.yaxis == "y" and t.fill == "tonexty" for t in fig.data)  # the waveform band
    assert list(fig.layout.xaxis.range) == [0, r["duration_s"]]
    from ser.plots import emotion_timeline_figure

    bare = emotion_timeline_figure([0.5, 2.0], [1.5, 3.0], ["sad", "angry"], [0.9, 0.4])
    assert all(t.yaxis == "y2" for t in bare.data) and len(bare.data) == 4


# -- live ----------------------------------------------------------------------------------------
def chunks_of(y: np.ndarray, *, sr: int, seconds: float):
    """As the browser sends it: int16 at ``sr``, ``seconds`` at a time."""
    pcm = (np.clip(y, -1, 1) * 32767).astype(np.int16)
    step = int(seconds * sr)
    return [(sr, pcm[i:i + step]) for i in range(0, len(pcm), step)]


def test_stream_predicts_about_once_a_second_and_smooths(rec, recording):
    y, _ = recording
    y44 = resample(y[: 12 * SR], orig_sr=SR, sr=44_100)
    state = tl.StreamState(every_s=1.0, n_smooth=3)
    results = []
    for chunk in chunks_of(y44, sr=44_100, seconds=0.25):
        state, r = tl.stream_update(state, chunk, recognizer=rec)
        results.append(r)
        if r["window"] is not None:
            assert r["probabilities"] == pytest.approx(
                {k: float(v) for k, v in zip(rec.labels, np.mean(state.history, axis=0))}, abs=1e-4)
            assert 1 <= r["windows"] <= 3 and r["emotion"] == max(r["probabilities"], key=r["probabilities"].get)
    updates = [r for i, r in enumerate(results) if r["status"] != "listening" and r is not results[i - 1]]
    assert len(updates) == 12  # one new result per second of audio, none in between
    assert results[0]["status"] == "listening" and results[-1]["time_s"] == pytest.approx(12, abs=0.3)
    assert sum(r["status"] == "speech" for r in updates) >= 6
    assert len(state.trace) == len(updates) and len(state.history) <= 3
    copy.deepcopy(state)  # gr.State copies it


def test_stream_reports_silence_ignores_none_and_stops_cleanly(rec, recording):
    state = tl.StreamState(every_s=0.5)
    state, r = tl.stream_update(state, None, recognizer=rec)
    assert r["status"] == "listening" and r["emotion"] is None
    state, r = tl.stream_update(state, (48_000, np.zeros((48_000, 2), np.int16)), recognizer=rec)  # stereo
    assert r["status"] == "silence" and r["emotion"] is None and state.received_s == pytest.approx(1.0)
    y, spans = recording
    a, b = spans[0]
    state, r = tl.stream_update(state, (SR, y[int(a * SR): int(b * SR)]), recognizer=rec)
    assert r["status"] == "speech" and r["emotion"] in rec.labels
    state, r2 = tl.stream_update(state, (SR, np.zeros(SR, np.float32)), recognizer=rec)
    assert r2["status"] == "speech" and r2["windows"] == 2  # the last 3 s still hold 1 s of the sentence
    assert r2["probabilities"] == pytest.approx(
        {k: float(v) for k, v in zip(rec.labels, np.mean(state.history, axis=0))}, abs=1e-4)
    new, summary = tl.stream_stop(state)
    assert summary["duration_s"] == pytest.approx(state.received_s, abs=0.01) and summary["updates"] == 3
    assert new.received_s == 0 and new.history == [] and new.every_s == 0.5
    with pytest.raises(AudioError):
        tl.stream_update(new, np.zeros(100), recognizer=rec)
    with pytest.raises(ValueError):
        tl.StreamState(n_smooth=0)


def test_batches_give_each_clip_exactly_its_own_probabilities(rec, recording):
    """The one inference path: a clip's row of predict_proba_batch is its predict_proba, whatever else
    is in the batch (rows are never mixed by a batched matrix product)."""
    y, spans = recording
    clips = [y[int(a * SR): int(b * SR)] for a, b in spans[:3]]
    one = np.stack([rec.predict_proba(c) for c in clips])
    assert np.array_equal(rec.predict_proba_batch(clips), one)
    assert np.array_equal(rec.predict_proba_batch(clips[::-1])[::-1], one)
    assert rec.predict_proba_batch([]).shape == (0, len(rec.labels))


def test_an_ensemble_averages_raw_member_probabilities_and_applies_its_own_temperature(rec, recording):
    """Members' temperatures are not applied inside an ensemble; its own is applied once, on every path."""
    from ser.models.calibration import apply_temperature
    from ser.models.ensemble import EnsembleRecognizer
    from ser.models.mlp import MLPRecognizer

    y, spans = recording
    clips = [y[int(a * SR): int(b * SR)] for a, b in spans[:3]]
    hot = MLPRecognizer(rec.pipeline, features=rec.features, labels=rec.labels[::-1], temperature=2.5)
    ens = EnsembleRecognizer({"a": rec, "b": hot}, weights={"a": 0.25, "b": 0.75}, temperature=0.7)
    raw = rec.raw_proba_batch(clips)
    expected = apply_temperature(0.25 * raw + 0.75 * hot.raw_proba_batch(clips)[:, ::-1], 0.7)
    got = ens.predict_proba_batch(clips)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-7)  # BLAS threads round differently
    np.testing.assert_allclose(np.stack([ens.predict_proba(c) for c in clips]), got, rtol=0, atol=1e-12)
    mixed_calibrated = 0.25 * rec.predict_proba_batch(clips) + 0.75 * hot.predict_proba_batch(clips)[:, ::-1]
    assert np.abs(got - mixed_calibrated).max() > 1e-3  # the old batch path's answer, which was wrong
    result = tl.timeline(y, ens, sr=SR, segments=spans[:3])  # segments are prepared as clips are loaded
    trimmed = ens.predict_proba_batch([ens.load((SR, c)) for c in clips])
    for seg, p in zip(result, trimmed):
        assert [seg["probabilities"][lab] for lab in ens.labels] == pytest.approx(p, abs=1e-6)


# -- adapting to a voice -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def voice_recording(ravdess_dir):
    """Six clips of actor 04 (a voice the tiny smile model never heard) joined by silences."""
    return long_recording(ravdess_files(ravdess_dir, "04", 6), gaps_s=[1.0, 0.8, 1.5, 0.9, 1.2, 0.7])


def test_self_adaptation_enrols_the_recordings_own_segments(smile, voice_recording):
    y, spans = voice_recording
    off, info_off = tl.adapted_timeline(y, smile, sr=SR, adapt="off")
    own, info = tl.adapted_timeline(y, smile, sr=SR, adapt="self")
    assert len(own) == len(off) == len(spans)
    assert info_off == {"adapted": False, "source": None, "n_clips": None, "note": ""}
    assert info["adapted"] and info["source"] == "self" and info["n_clips"] == len(own)
    assert "recording's own voice" in info["note"]
    assert [(s["start"], s["end"]) for s in own] == [(s["start"], s["end"]) for s in off]
    assert any(s["probabilities"] != t["probabilities"] for s, t in zip(own, off))
    # the profile is the segments' own statistics, each segment described exactly as it is predicted
    clips = [tl.remove_dc(y[round(s["start"] * SR): round(s["end"] * SR)]) for s in off]
    clips = [tl.trim_silence(c, top_db=float(smile.audio["top_db"])) for c in clips]
    profile = tl.self_profile(smile, clips)
    X = np.stack([smile.features_of(c) for c in clips]).astype(np.float64)
    np.testing.assert_allclose(profile.stats(smile.space).mean, X.mean(axis=0), rtol=1e-5, atol=1e-5)
    expected = smile.predict_proba_batch(clips, speaker=profile)
    for s, p in zip(own, expected):
        assert list(s["probabilities"].values()) == pytest.approx(list(p), abs=2e-6)


def test_auto_adapts_only_from_the_measured_length_and_prefers_an_enrolled_profile(smile, voice_recording, monkeypatch):
    y, _ = voice_recording
    monkeypatch.setattr(tl, "SELF_ADAPT_FROM", None)
    assert not tl.adapted_timeline(y, smile, sr=SR, adapt="auto")[1]["adapted"]
    monkeypatch.setattr(tl, "SELF_ADAPT_FROM", 7)  # more segments than the recording has
    assert not tl.adapted_timeline(y, smile, sr=SR, adapt="auto")[1]["adapted"]
    monkeypatch.setattr(tl, "SELF_ADAPT_FROM", 2)  # never below 4 segments, whatever the setting
    assert tl.adapted_timeline(y[: round(9 * SR)], smile, sr=SR, adapt="auto")[1]["source"] is None
    monkeypatch.setattr(tl, "SELF_ADAPT_FROM", 6)
    assert tl.adapted_timeline(y, smile, sr=SR, adapt="auto")[1]["source"] == "self"
    enrolled = smile.enroll([(SR, y[round(a * SR): round(b * SR)]) for a, b in
                             [(s["start"], s["end"]) for s in tl.timeline(y, smile, sr=SR)][:4]])
    segments, info = tl.adapted_timeline(y, smile, sr=SR, adapt="auto", speaker=enrolled)
    assert info["source"] == "profile" and info["n_clips"] == 4


def test_self_adaptation_needs_4_segments_and_a_model_that_adapts(smile, rec, voice_recording):
    y, spans = voice_recording
    short = y[: round((spans[1][1] + 0.3) * SR)]  # two sentences
    segments, info = tl.adapted_timeline(short, smile, sr=SR, adapt="self")
    assert len(segments) == 2 and not info["adapted"] and "at least 4" in info["note"]
    segments, info = tl.adapted_timeline(y, rec, sr=SR, adapt="self")  # the tiny MLP
    assert not info["adapted"] and "cannot adapt" in info["note"]
    assert segments == tl.timeline(y, rec, sr=SR)
    with pytest.raises(tl.ParameterError, match="adapt must be one of"):
        tl.adapted_timeline(y, smile, sr=SR, adapt="always")


def test_self_adaptation_default_is_the_measured_one():
    """``SELF_ADAPT_FROM`` is what ``python -m bench.timeline_adapt`` chose (reports/timeline_adapt.json)."""
    from ser import settings

    path = settings.reports_dir() / "timeline_adapt.json"
    if not path.is_file():
        pytest.skip("no timeline self-adaptation study yet")
    assert tl.SELF_ADAPT_FROM == json.loads(path.read_text())["default_from_segments"]


def test_stream_adapts_each_window_to_a_profile(smile, voice_recording):
    y, spans = voice_recording
    profile = smile.enroll([(SR, y[round(a * SR): round(b * SR)]) for a, b in spans[:4]])
    state = tl.StreamState(every_s=1.0)
    a, b = spans[4]
    state, r = tl.stream_update(state, (SR, y[round(a * SR): round(b * SR)]), recognizer=smile, speaker=profile)
    assert r["status"] == "speech" and r["adapted"]
    window = tl.remove_dc(state.buffer)
    expected = smile.predict_proba(tl.trim_silence(window, top_db=float(smile.audio["top_db"])), speaker=profile)
    assert list(r["window"].values()) == pytest.approx(list(expected), abs=1e-4)
    state, r = tl.stream_update(tl.StreamState(), (SR, y[round(a * SR): round(b * SR)]), recognizer=smile)
    assert not r["adapted"]
