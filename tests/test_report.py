"""The README's accuracy table is the bundled models' metadata, not hand-typed numbers."""

from __future__ import annotations

import json
from pathlib import Path

from ser.report import END, START, results_table, update_readme

REPO = Path(__file__).resolve().parents[1]


def test_readme_table_matches_bundled_metadata():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert block == results_table(REPO / "models"), "run: python -m ser.report"


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
