"""ser/reports.py: tables and charts from what was measured.

The README's accuracy table is the bundled models' metadata and its study tables the stored
``reports/*.json``, never hand-typed numbers; charts and model-card sections render the stored
numbers and survive a missing report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ser import reports as er
from ser.reports import END, START, STUDIES_END, STUDIES_START, readme_tables, results_table, update_readme

REPO = Path(__file__).resolve().parents[1]


def test_readme_table_matches_bundled_metadata():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert block == results_table(REPO / "models"), "run: python -m ser report"


def test_readme_study_tables_match_the_reports():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split(STUDIES_START, 1)[1].split(STUDIES_END, 1)[0].strip()
    assert block == readme_tables(REPO / "reports"), "run: python -m ser report"
    assert "RAVDESS → TESS" in block and "telephone" in block


def test_readme_timeline_adaptation_table_matches_its_report():
    from ser.reports import TIMELINE_END, TIMELINE_START, timeline_adapt_table

    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split(TIMELINE_START, 1)[1].split(TIMELINE_END, 1)[0].strip()
    assert block == timeline_adapt_table(), "run: python -m ser report"


def test_timeline_adaptation_table_states_each_draws_gain_and_the_default():
    from ser.reports import timeline_adapt_table

    r = {"off": {"uar": 0.6, "uar_std": 0.01}, "self": {"uar": 0.65, "uar_std": 0.02}, "gain_per_draw": [0.04, 0.06],
         "segments": {"median": 12.0, "min": 11, "max": 14}, "not_adapted": 0, "recordings": 48}
    short = {**r, "gain_per_draw": [0.0, 0.0], "not_adapted": 48, "segments": {"median": 2.0, "min": 2, "max": 3}}
    table = timeline_adapt_table({"results": {"12": r, "2": short}, "default_from_segments": 12, "helps_from_clips": 12})
    lines = table.splitlines()
    assert lines[2].startswith("| 2 | 2 (2–3) | 60.0 ± 1.0 | not adapted (< 4 segments) |")
    assert lines[3] == "| 12 | 12 (11–14) | 60.0 ± 1.0 | 65.0 ± 2.0 | +4.0, +6.0 |"
    assert "default (`adapt=\"auto\"`) from 12 voiced segments" in table
    never = timeline_adapt_table({"results": {"12": r}, "default_from_segments": None})
    assert "not the default" in never
    assert timeline_adapt_table({}).startswith("_No timeline self-adaptation study yet")


def test_studies_block_is_rewritten_from_the_reports(tmp_path):
    (tmp_path / "robustness.json").write_text(json.dumps(
        {"results": {"standard": {"clean": {"accuracy": 0.5}, "telephone": {"accuracy": 0.25}}}}))
    readme = tmp_path / "README.md"
    readme.write_text(f"{START}\n{END}\nprose\n{STUDIES_START}\nold numbers\n{STUDIES_END}\nrest\n")
    assert update_readme(readme, tmp_path, tmp_path)
    text = readme.read_text()
    assert "| telephone | 25.0 (-25.0) |" in text and "old numbers" not in text and text.endswith("rest\n")


def test_table_reads_numbers_from_metadata(tmp_path):
    (tmp_path / "mlp").mkdir()
    meta = {"version": "v1", "data": {"clips": 10, "speakers": 2, "corpora": {"ravdess": 10}},
            "metrics": {"speaker_independent": {"accuracy": 0.5123, "uar": 0.5, "macro_f1": 0.49, "n_test": 10}}}
    (tmp_path / "mlp" / "metadata.json").write_text(json.dumps(meta))
    table = results_table(tmp_path)
    assert "| mlp | v1 | speaker-independent (6 folds by actor) | 51.2 | 50.0 | 49.0 | 10 |" in table
    assert "test audio" not in table  # no degraded condition tested, no such row
    meta["robustness"] = {"telephone": {"accuracy": 0.25, "uar": 0.24, "macro_f1": 0.2, "n_test": 10}}
    (tmp_path / "mlp" / "metadata.json").write_text(json.dumps(meta))
    table = results_table(tmp_path)
    assert "| mlp | v1 | speaker-independent (6 folds by actor), telephone test audio | 25.0 | 24.0 | 20.0 | 10 |" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold\n{END}\nrest\n")
    assert update_readme(readme, tmp_path) and "51.2" in readme.read_text() and "\nold\n" not in readme.read_text()
    assert not update_readme(readme, tmp_path)



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
    assert "robustness_cnn.py" in er.reliability_chart(kind="cnn").layout.annotations[0].text
    (tmp_path / "robustness.json").write_text(json.dumps(ROB))
    fig = er.robustness_chart()
    assert [t.name for t in fig.data] == ["MLP, standard training", "MLP, robust training"]
    assert list(fig.data[1].y) == pytest.approx([54.8, 50.0])
    cnn = {**ROB, "results": {"standard": {"clean": {"accuracy": 0.6}, "telephone": {"accuracy": 0.41}}}}
    (tmp_path / "robustness_cnn.json").write_text(json.dumps(cnn))
    fig = er.robustness_chart()
    assert [t.name for t in fig.data][-1] == "CNN, standard training"
    assert list(fig.data[-1].y) == pytest.approx([60.0, 41.0])
    assert list(er.robustness_chart(ROB).data[0].x) == ["clean", "telephone"]
    (tmp_path / "calibration.json").write_text("{not json")
    assert er.load_report("calibration.json") is None


BUNDLED = {"versions": {"mlp": "v1", "cnn": "v2"}, "results": {"ravdess(all emotions)→tess": {
    "mlp": {"labels": EIGHT, "chance_uar": 1 / 8, "by_corpus": {"tess": _m(0.315, 0.316, SEVEN)}},
    "cnn": {"labels": EIGHT, "chance_uar": 1 / 8, "by_corpus": {"tess": _m(0.25, 0.26, SEVEN)}}}}}


def test_bundled_table_keeps_one_model_version():
    table = er.bundled_table(BUNDLED)
    assert "| MLP `v1` | RAVDESS → TESS | 7 of its 8 | 12.5 | 31.5 | 31.6 | 10 |" in table
    assert "CNN `v2`" in table
    only = er.bundled_table(BUNDLED, kind="cnn", version="v2")
    assert "CNN `v2`" in only and "MLP" not in only
    assert er.bundled_table(BUNDLED, kind="cnn", version="v9") == ""


def test_card_section_only_for_models_the_studies_describe(tmp_path):
    (tmp_path / "crosscorpus_bundled.json").write_text(json.dumps(BUNDLED))
    (tmp_path / "robustness.json").write_text(json.dumps(ROB))
    (tmp_path / "crosscorpus.json").write_text(json.dumps(CROSS))
    ravdess = {"corpora": {"ravdess": 1440}}
    text = er.card_section({"model": "mlp", "version": "v1", "data": ravdess}, tmp_path)
    assert "This model on corpora it never heard" in text and "| MLP `v1` |" in text
    assert "not this exact model" in text and "| telephone | 30.0 (-25.0) |" in text and "RAVDESS → TESS" in text
    # another version of the MLP: the recipe's studies, not the bundled model's row
    other = er.card_section({"model": "mlp", "version": "v7", "data": ravdess}, tmp_path)
    assert "never heard" not in other and "not this exact model" in other
    # trained on another corpus: the RAVDESS studies do not describe it
    assert er.card_section({"model": "mlp", "version": "v7", "data": {"corpora": {"emodb": 500}}}, tmp_path) == ""
    # the CNN has no stored studies here
    assert er.card_section({"model": "cnn", "version": "v8", "data": ravdess}, tmp_path) == ""


def test_newvoice_table_shows_each_lever_its_robustness_and_collapse():
    from ser.reports import newvoice_table

    report = {"recipes": {"mlp+level": {
        "clean": {"accuracy_mean": 0.524, "accuracy_std": 0.04, "uar_mean": 0.514, "uar_std": 0.041},
        "gain-20dB": {"uar": 0.511}, "gain+20dB": {"uar": 0.485},
        "tess": {"uar": 0.409, "recall": {"neutral": 0.043, "sad": 0.489}, "predicted": {"neutral": 0.006, "sad": 0.19}}}},
        "fusions": {"mlp+level + smile+level": {"clean": {"uar_mean": 0.6, "uar_std": 0.05},
                                                "tess": {"uar": 0.45, "recall": {"neutral": 0.0}, "predicted": {"neutral": 0.0}}}}}
    table = newvoice_table(report).splitlines()
    assert table[2].startswith("| mlp+level | 52.4 ± 4.0 | 51.4 ± 4.1 | 51.1 | 48.5 | 40.9 | neutral 4.3 |")
    assert table[3].startswith("| fusion: mlp+level + smile+level | – | 60.0 ± 5.0 | – | – | 45.0 |")
    assert table[3].endswith("neutral 0.0; never predicted: neutral |")
    assert newvoice_table({}).startswith("_No study yet")


def test_enrolment_table_shows_each_head_the_served_rule_ensembles_and_time():
    from ser.reports import enrolment_table

    def entry(uar, base=0.6, draws=3):
        return {"uar": uar, "uar_std": 0.01, "accuracy": uar + 0.01, "accuracy_std": 0.0, "base_uar": base,
                "draws": draws}

    res = {"smile": {"k0": {"uar": 0.626, "accuracy": 0.633},
                     "random": {"4": {"z": entry(0.565), "mean": entry(0.609), "served": entry(0.621, 0.628)}},
                     "neutral": {"4": {"z": entry(0.559), "mean": entry(0.58), "served": entry(0.592, 0.641)}}},
           "smile+cnn": {"k0": {"uar": 0.649}, "random": {"4": {"served": entry(0.663)}}}}
    report = {"kinds": {"smile": {
        "ravdess": {"results": res},
        "ravdess_to_tess": {"results": {"smile": {"k0": {"uar": 0.275}, "random": {"4": {"served": entry(0.49, 0.274)}}}}},
        "timing": {"enrol_16_files_s": {"median": 1.04}, "predict_s": {"without_profile_median": 0.058,
                   "with_profile_median": 0.057, "difference_median": -0.0009}, "standardise_and_head_s": 0.0003,
                   "profile_json_bytes": 139897}}}}
    table = enrolment_table(report)
    lines = table.splitlines()
    assert lines[2] == "| none (k = 0) | 62.6 | | | | 63.3 | 27.5 | | | |"
    assert lines[3] == ("| 4 random | 62.1 ± 1.0 | 56.5 ± 1.0 | 60.9 ± 1.0 | 62.8 | 63.1 ± 0.0 | 49.0 ± 1.0 | – | – "
                        "| 27.4 |")
    assert lines[4].startswith("| 4 neutral only | 59.2 ± 1.0 |")
    assert "| smile + cnn | 64.9 | 66.3 ± 1.0 |" in table
    assert "Enrolment of 16 files (decoding and features): 1.0 s" in table and "140 kB" in table
    assert enrolment_table({}).startswith("_No enrolment study yet")
    assert "By feature family" not in table
    report["kinds"]["mlp"] = {"ravdess": {"results": {"mlp": {"k0": {"uar": 0.493},
                                                              "random": {"4": {"served": entry(0.528)}}}}}}
    assert "| mlp (handcrafted, 543) | RAVDESS | 49.3 | 52.8 ± 1.0 |" in enrolment_table(report)


def test_predicted_share_table_gives_each_labels_share_and_names_a_collapse():
    # Rows: true labels, columns: predicted, in the model's label order. TESS has no calm clips.
    collapsed = [[0, 2, 0, 0, 0, 0, 0, 0]] + [[0] * 8] + [[0, 0, 1, 0, 0, 0, 3, 0]] + [[0] * 8] * 5
    study = {"results": {"ravdess→tess": {"raw": {"labels": SEVEN, "chance_uar": 1 / 7,
                                                  "by_corpus": {"tess": _m(0.4, 0.41, SEVEN)},
                                                  "confusion": {"tess": [[1] * 7] * 7}}}}}
    bundled = {"versions": {"cnn": "v2"}, "results": {"ravdess(all emotions)→tess": {
        "cnn": {"labels": EIGHT, "chance_uar": 1 / 8, "by_corpus": {"tess": _m(0.25, 0.26, SEVEN)},
                "confusion": {"tess": collapsed}}}}}
    lines = er.predicted_share_table([("bundled", bundled), ("MLP recipe", study)]).splitlines()
    assert lines[0].startswith("| model | trained → tested on | neutral | calm | happy |")
    assert lines[2] == ("| bundled CNN `v2` | RAVDESS (model with all its emotions) → TESS | 0.0 | 33.3 | 16.7 | 0.0 | "
                        "0.0 | 0.0 | 50.0 | 0.0 | neutral, sad, angry, fearful, surprised |")
    assert lines[3] == "| MLP recipe | RAVDESS → TESS | 14.3 | – | 14.3 | 14.3 | 14.3 | 14.3 | 14.3 | 14.3 | none |"
    assert er.predicted_share_table([("x", None)]) == ""
