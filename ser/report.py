"""README tables generated from the saved models' ``metadata.json`` (never typed by hand).

``python -m ser.report`` rewrites the block between ``<!-- results:start -->`` and
``<!-- results:end -->`` in README.md; a test checks the README matches the bundled models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["results_table", "update_readme"]

START, END = "<!-- results:start -->", "<!-- results:end -->"
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


def update_readme(readme: str | Path, models: str | Path) -> bool:
    """Replace the results block; return whether the file changed."""
    readme = Path(readme)
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise ValueError(f"{readme} has no {START} ... {END} block.")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{results_table(models)}\n{END}{tail}"
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    changed = update_readme(root / "README.md", root / "models")
    print("README.md updated" if changed else "README.md already up to date", file=sys.stderr)
