"""README tables generated from what was measured (never typed by hand).

``python -m ser.report`` rewrites two blocks of README.md: between ``<!-- results:start -->`` and
``<!-- results:end -->`` the bundled models' metrics (their ``metadata.json``), and between
``<!-- studies:start -->`` and ``<!-- studies:end -->`` the studies' tables
(:func:`ser.evaluation_reports.readme_tables`, from ``reports/*.json``). Tests check the README
matches both.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["results_table", "update_readme", "replace_block"]

START, END = "<!-- results:start -->", "<!-- results:end -->"
STUDIES_START, STUDIES_END = "<!-- studies:start -->", "<!-- studies:end -->"
PROTOCOL_NAMES = {"speaker_independent": "speaker-independent (6 folds by actor)",
                  "stratified": "stratified 75/25 clip split"}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def results_table(models: str | Path) -> str:
    """Markdown: one row per model and protocol, from ``models/<kind>/metadata.json``."""
    rows = ["| model | version | protocol | accuracy % | UAR % | macro F1 % | test clips |",
            "|---|---|---|---:|---:|---:|---:|"]
    found = False
    for kind in ("mlp", "cnn", "ensemble"):
        path = Path(models) / kind / "metadata.json"
        if not path.is_file():
            continue
        found = True
        meta = json.loads(path.read_text(encoding="utf-8"))
        for protocol, m in meta.get("metrics", {}).items():
            rows.append(f"| {kind} | {meta.get('version', '')} | {PROTOCOL_NAMES.get(protocol, protocol)} | "
                        f"{_pct(m['accuracy'])} | {_pct(m['uar'])} | {_pct(m['macro_f1'])} | {m['n_test']} |")
    if not found:
        return "_No bundled model yet._"
    data = json.loads((Path(models) / "mlp" / "metadata.json").read_text()).get("data", {}) \
        if (Path(models) / "mlp" / "metadata.json").is_file() else {}
    note = (f"\nTrained and evaluated on {data.get('clips', '?')} clips of {data.get('speakers', '?')} speakers "
            f"({', '.join(data.get('corpora', {}))}); chance is 12.5 % for 8 emotions.") if data else ""
    return "\n".join(rows) + note


def replace_block(text: str, start: str, end: str, content: str) -> str:
    """``text`` with everything between the markers ``start`` and ``end`` replaced by ``content``."""
    if start not in text or end not in text:
        raise ValueError(f"No {start} ... {end} block.")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{content}\n{end}{tail}"


def update_readme(readme: str | Path, models: str | Path, reports: str | Path | None = None) -> bool:
    """Replace the results block (and the studies block, when the README has one); return whether
    the file changed."""
    from .evaluation_reports import readme_tables

    readme = Path(readme)
    text = readme.read_text(encoding="utf-8")
    new = replace_block(text, START, END, results_table(models))
    if STUDIES_START in new:
        new = replace_block(new, STUDIES_START, STUDIES_END, readme_tables(reports))
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    changed = update_readme(root / "README.md", root / "models")
    print("README.md updated" if changed else "README.md already up to date", file=sys.stderr)
