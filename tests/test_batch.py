"""ser.batch and ``train.py predict``: a row per file, an error column, resuming, CSV inputs, workers."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from tiny_model import ravdess_files, tiny_models_root

from ser.serving import batch
from ser.cli import main
from ser.errors import DataError


@pytest.fixture(scope="module")
def model_dir(ravdess_dir) -> Path:
    return tiny_models_root(ravdess_dir) / "mlp"


@pytest.fixture(scope="module")
def rec(model_dir):
    from ser.models.base import Recognizer

    return Recognizer.from_pretrained(model_dir)


@pytest.fixture
def folder(tmp_path, ravdess_dir) -> Path:
    """Four RAVDESS clips (one in a subfolder), a text file named .wav, an empty .flac, a README."""
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    files = ravdess_files(ravdess_dir, "07", 4)
    for f in files[:3]:
        shutil.copy(f, d / f.name)
    shutil.copy(files[3], d / "sub" / files[3].name)
    (d / "bad.wav").write_text("this is not audio\n")
    (d / "empty.flac").write_bytes(b"")
    (d / "README.txt").write_text("not an input")
    return d


def read(out: Path) -> list[dict]:
    with open(out, newline="") as f:
        return list(csv.DictReader(f))


def check_good(row: dict, rec) -> None:
    probs = {k: float(row[f"p_{k}"]) for k in rec.labels}
    assert row["error"] == "" and row["emotion"] == max(probs, key=probs.get)
    assert float(row["confidence"]) == probs[row["emotion"]] and sum(probs.values()) == pytest.approx(1, abs=1e-4)
    p = rec.predict(row["path"])  # the same numbers as one prediction of the file (rounded to 6 places)
    assert row["emotion"] == p.label and float(row["confidence"]) == round(p.confidence, 6)


def test_folder_gets_a_row_per_file_and_bad_files_an_error(folder, tmp_path, rec, model_dir, capsys):
    out = tmp_path / "results.csv"
    assert main(["predict", str(folder), "--model", str(model_dir), "--out", str(out), "--no-progress"]) == 0
    rows = read(out)
    assert list(rows[0]) == batch.fieldnames(rec.labels)
    by_name = {Path(r["path"]).name: r for r in rows}
    assert sorted(by_name) == sorted(p.name for p in folder.rglob("*") if p.suffix in (".wav", ".flac"))
    assert "not audio" in by_name["bad.wav"]["error"] and by_name["bad.wav"]["emotion"] == ""
    assert "empty" in by_name["empty.flac"]["error"]
    for name, row in by_name.items():
        if name not in ("bad.wav", "empty.flac"):
            check_good(row, rec)
    assert "4 predicted, 2 could not be read, 0 skipped" in capsys.readouterr().err


def test_rerun_resumes_and_retry_errors_tries_failed_files_again(folder, tmp_path, model_dir, ravdess_dir, capsys):
    out = tmp_path / "results.csv"
    args = ["predict", str(folder), "--model", str(model_dir), "--out", str(out), "--no-progress", "--jobs", "1"]
    assert main(args) == 0
    first = read(out)
    capsys.readouterr()
    assert main(args) == 0  # nothing new: nothing predicted, file unchanged
    assert read(out) == first and "0 predicted, 0 could not be read, 6 skipped" in capsys.readouterr().err

    lines = out.read_text().splitlines(keepends=True)  # as if killed after two rows
    out.write_text("".join(lines[:3]))
    new = ravdess_files(ravdess_dir, "08", 1)[0]
    shutil.copy(new, folder / new.name)
    assert main(args) == 0
    assert "2 of 7 files already in" in capsys.readouterr().err  # 4 lost rows + 1 new file to go
    rows = read(out)
    assert len(rows) == 7 and rows[:2] == first[:2] and len({r["path"] for r in rows}) == 7

    shutil.copy(new, folder / "bad.wav")  # fixed: now a FLAC under a .wav name
    assert main(args + ["--retry-errors"]) == 0
    rows = {Path(r["path"]).name: r for r in read(out)}
    assert len(rows) == 7 and rows["bad.wav"]["error"] == "" and rows["bad.wav"]["emotion"]
    assert rows["empty.flac"]["error"]  # still bad, tried again, still one row


def test_csv_input_with_relative_paths(folder, tmp_path, rec, model_dir):
    listing = folder / "list.csv"
    names = [p.name for p in sorted(folder.glob("*.flac")) if p.stat().st_size] + ["missing.wav"]
    listing.write_text("path,emotion\n" + "".join(f"{n},x\n" for n in names))
    out = tmp_path / "from_csv.csv"
    assert main(["predict", str(listing), "--model", str(model_dir), "--out", str(out), "--no-progress"]) == 0
    rows = read(out)
    assert [Path(r["path"]).name for r in rows] == names
    assert "does not exist" in rows[-1]["error"]
    check_good(rows[0], rec)
    (folder / "nopath.csv").write_text("file\nx.wav\n")
    with pytest.raises(DataError, match="'path' column"):
        batch.expand_inputs([folder / "nopath.csv"])


def test_stdout_without_out_and_a_foreign_csv_is_refused(folder, tmp_path, model_dir, capsys):
    assert main(["predict", str(folder / "bad.wav"), "--model", str(model_dir), "--no-progress"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].startswith("path,emotion,confidence") and "bad.wav" in text[1]
    other = tmp_path / "other.csv"
    other.write_text("path,label\nx,y\n")
    assert main(["predict", str(folder), "--model", str(model_dir), "--out", str(other), "--no-progress"]) == 2
    assert "another --out" in capsys.readouterr().err


def test_expand_inputs_recurses_filters_and_deduplicates(folder):
    files = batch.expand_inputs([folder, folder / "bad.wav", str(folder / "sub" / ".." / "bad.wav")])
    names = [Path(f).name for f in files]
    assert "README.txt" not in names and names.count("bad.wav") == 1 and len(files) == 6


def test_predict_batch_for_the_app(folder, rec):
    files = sorted(str(p) for p in folder.glob("*.flac")) + [str(folder / "bad.wav")]
    rows = batch.predict_batch(files, rec)
    assert [r["file"] for r in rows] == [Path(f).name for f in files]  # no server folders in answers
    assert all("path" not in r for r in rows)  # gradio_client would take a dict with "path" for a file
    assert list(rows[0])[1:] == batch.fieldnames(rec.labels)[1:]
    assert rows[-1]["error"] and rows[-1]["emotion"] is None and rows[-1]["p_calm"] is None
    good = [r for r in rows if not r["error"]]
    assert good and all(isinstance(r["confidence"], float) and isinstance(r["uncertain"], bool) for r in good)
    text = batch.rows_to_csv(rows)
    assert text.splitlines()[0] == ",".join(["file", *batch.fieldnames(rec.labels)[1:]])
    assert len(text.splitlines()) == len(rows) + 1
    assert batch.rows_to_csv([], labels=rec.labels).strip() == ",".join(batch.fieldnames(rec.labels))
    with pytest.raises(DataError, match="No files"):
        batch.predict_batch([], rec)
    with pytest.raises(DataError, match="at most 2"):
        batch.predict_batch(files, rec, max_files=2)


def test_worker_processes_give_the_rows_of_one_process(folder, rec):
    """joblib's process pool (workers load the model by its path) matches the in-process run exactly."""
    paths = batch.expand_inputs([folder])
    here = [r for c in batch.predict_files(paths, model=rec, n_jobs=1, chunk=2) for r in c]
    pool = [r for c in batch.predict_files(paths, model=rec, n_jobs=2, chunk=2) for r in c]
    assert pool == here
    other_chunks = [r for c in batch.predict_files(paths, model=rec, n_jobs=1, chunk=5) for r in c]
    assert other_chunks == here  # a file's row never depends on its neighbours
    assert np.isclose(sum(v for k, v in here[0].items() if k.startswith("p_")), 1, atol=1e-4)


# -- speaker adaptation: --profile and --speaker-column (smile, smile_dir: conftest) -----------------
def _probs(row: dict, labels) -> list[float]:
    return [float(row[f"p_{lab}"]) for lab in labels]


def test_a_profile_adapts_every_file(tmp_path, ravdess_dir, folder, smile, smile_dir, capsys):
    """``ser enroll`` writes a profile; ``ser predict --profile`` gives each file exactly its
    ``ser.predict(..., speaker=profile)``, marked adapted; a model that cannot adapt refuses."""
    from ser.models.speaker import SpeakerProfile

    me = tmp_path / "me.json"
    clips = [str(p) for p in ravdess_files(ravdess_dir, "04", 8)]
    assert main(["enroll", *clips, "--model", str(smile_dir), "--out", str(me)]) == 0
    assert "speaker profile of 8 clips written" in capsys.readouterr().err
    profile = SpeakerProfile.load(me)
    out = tmp_path / "adapted.csv"
    assert main(["predict", str(folder), "--model", str(smile_dir), "--profile", str(me), "--out", str(out),
                 "--no-progress"]) == 0
    rows = read(out)
    assert list(rows[0]) == batch.fieldnames(smile.labels, adapted=True)
    good = [r for r in rows if not r["error"]]
    assert len(good) == 4 and all(r["adapted"] == "True" for r in good)
    for r in good:
        p = smile.predict(r["path"], speaker=profile)
        assert _probs(r, smile.labels) == pytest.approx([p.probabilities[lab] for lab in smile.labels], abs=1e-6)
    assert "adapted to the speaker profile" in capsys.readouterr().err
    rows_api = batch.predict_batch([r["path"] for r in good], smile, speaker=profile)
    assert all(r["adapted"] is True for r in rows_api)
    assert _probs(rows_api[0], smile.labels) == pytest.approx(_probs(good[0], smile.labels), abs=1e-6)
    assert main(["predict", str(folder), "--profile", str(me), "--no-progress"]) == 2  # the default MLP cannot
    assert "cannot adapt to a speaker" in capsys.readouterr().err


def test_a_speaker_column_enrols_each_speaker_from_its_own_files(tmp_path, ravdess_dir, smile, smile_dir, capsys):
    a, b = ravdess_files(ravdess_dir, "05", 6), ravdess_files(ravdess_dir, "06", 2)
    table = tmp_path / "list.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "speaker"])
        w.writerows([[str(p), "ann"] for p in a] + [[str(p), "bob"] for p in b] + [["missing.wav", "ann"]])
    out = tmp_path / "rows.csv"
    args = ["predict", str(table), "--model", str(smile_dir), "--speaker-column", "speaker", "--enrol-clips", "5",
            "--out", str(out), "--no-progress"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "adapted to 1 speakers" in err and "1 speakers had too few usable files" in err and "bob: 2 files" in err
    rows = read(out)
    assert list(rows[0]) == batch.fieldnames(smile.labels, speaker=True, adapted=True)
    paths = [str(p) for p in a + b] + [str(tmp_path / "missing.wav")]
    speakers = batch.speakers_of([table], "speaker")
    profiles, too_few = batch.speaker_profiles(smile, paths, speakers, enrol_clips=5)
    assert set(profiles) == {"ann"} and set(too_few) == {"bob"} and 4 <= profiles["ann"].n_clips <= 5
    by = {Path(r["path"]).name: r for r in rows}
    for p in a:
        r = by[p.name]
        assert r["speaker"] == "ann" and r["adapted"] == "True"
        expected = smile.predict(str(p), speaker=profiles["ann"])
        assert _probs(r, smile.labels) == pytest.approx([expected.probabilities[lab] for lab in smile.labels], abs=1e-6)
    for p in b:
        r = by[p.name]
        assert r["speaker"] == "bob" and r["adapted"] == "False"
        assert _probs(r, smile.labels) == pytest.approx(list(smile.predict(str(p)).probabilities.values()), abs=1e-6)
    assert by["missing.wav"]["error"] and by["missing.wav"]["adapted"] == ""
    assert main(args) == 0  # a rerun resumes: nothing left to do, the same profiles
    assert "0 predicted" in capsys.readouterr().err and read(out) == rows


def test_a_speaker_column_needs_a_table_with_that_column(tmp_path, folder, smile_dir, model_dir):
    with pytest.raises(DataError, match="a CSV \\(or a folder holding a manifest.csv\\) with a 'speaker' column"):
        batch.predict_to_csv([folder], model=str(smile_dir), speaker_column="speaker")
    table = tmp_path / "t.csv"
    table.write_text("path,who\nx.wav,a\n")
    with pytest.raises(DataError, match="has no 'speaker' column"):
        batch.speakers_of([table], "speaker")
    with pytest.raises(DataError, match="not both"):
        batch.predict_to_csv([table], model=str(smile_dir), speaker_column="who", profile="me.json")
    from ser.errors import ModelError

    with pytest.raises(ModelError, match="cannot adapt"):
        batch.predict_to_csv([table], model=str(model_dir), speaker_column="who")
