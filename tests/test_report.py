"""The README's accuracy table is the bundled models' metadata, not hand-typed numbers."""

from __future__ import annotations

import json
from pathlib import Path

from ser.reports import readme_tables
from ser.reports import END, START, STUDIES_END, STUDIES_START, results_table, update_readme

REPO = Path(__file__).resolve().parents[1]


def test_readme_table_matches_bundled_metadata():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert block == results_table(REPO / "models"), "run: python -m ser.report"


def test_readme_study_tables_match_the_reports():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split(STUDIES_START, 1)[1].split(STUDIES_END, 1)[0].strip()
    assert block == readme_tables(REPO / "reports"), "run: python -m ser.report"
    assert "RAVDESS → TESS" in block and "telephone" in block


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
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold\n{END}\nrest\n")
    assert update_readme(readme, tmp_path) and "51.2" in readme.read_text() and "\nold\n" not in readme.read_text()
    assert not update_readme(readme, tmp_path)
