"""Tables and figures from what was measured: stored studies (``reports/*.json``) and the bundled
models' metadata. Nothing here is typed by hand.

``ser report`` rewrites two blocks of README.md: between ``<!-- results:start -->`` and
``<!-- results:end -->`` the bundled models' metrics (their ``metadata.json``), and between
``<!-- studies:start -->`` and ``<!-- studies:end -->`` the studies' tables (:func:`readme_tables`);
also, when the README has it, the ``<!-- timeline-adapt:start -->`` block (:func:`timeline_adapt_table`).
Tests check the README matches both.

The studies are run once, as scripts (``bench/crosscorpus.py``, ``bench/robustness.py``), and their
results are committed as JSON; the README, the model cards and the app's Models tab read them here,
so no number is typed by hand.

``crosscorpus.json``  train→test accuracy / UAR next to chance, with and without speaker norm
``robustness.json``   accuracy per degradation, standard vs robust training
``calibration.json``  expected calibration error before/after temperature scaling, reliability rows
``speaker_norm.json`` per-speaker normalisation in batch mode

The CNN's studies have the same layout with a ``_cnn`` suffix (``bench/robustness_cnn.py``,
``bench/crosscorpus.py --model cnn``); ``crosscorpus_bundled.json`` holds the shipped models on
corpora they never heard (``bench/crosscorpus.py --bundled``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from . import settings
from .audio.corpora import EMOTIONS, corpus_name
from .plots import enrolment_curve, message_figure, reliability_figure, robustness_figure

__all__ = [
    "load_report",
    "crosscorpus_table",
    "robustness_table",
    "calibration_table",
    "speaker_norm_table",
    "markdown_summary",
    "robustness_chart",
    "reliability_chart",
    "shipped_recipe",
    "bundled_table",
    "card_section",
    "STUDIES",
    "STUDIES_NOTE",
    "readme_tables",
    "newvoice_table",
    "levers_table",
    "enrolment_table",
    "enrolment_chart",
    "timeline_adapt_table",
    "results_table",
    "replace_block",
    "update_readme",
    "metrics_table",
    "protocol_table",
]

#: Report file of each study, per model kind.
STUDIES = {
    "mlp": {"crosscorpus": "crosscorpus.json", "robustness": "robustness.json", "calibration": "calibration.json"},
    "cnn": {"crosscorpus": "crosscorpus_cnn.json", "robustness": "robustness_cnn.json",
            "calibration": "calibration_cnn.json"},
}
BUNDLED = "crosscorpus_bundled.json"
#: What the study charts are, in the app's words.
STUDIES_NOTE = ("Measured on RAVDESS actors the models never heard (6 folds of 4 actors), with the test audio "
                "degraded as real audio is; *robust training* adds randomly degraded copies of the training clips. "
                "A temperature fitted on training speakers only makes the shown confidence mean what it says: among "
                "predictions shown at 60 %, about 60 % are right. Full tables and the commands: the README's "
                "*Beyond acted speech* section.")


def load_report(name: str, root: str | os.PathLike | None = None) -> dict | None:
    """A report by file name (``"robustness.json"``), or None when it is missing or unreadable."""
    path = Path(root or settings.reports_dir()) / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _pair_name(key: str, test: str) -> tuple[str, str]:
    """(train → test label, what is evaluated) of a ``crosscorpus.json`` result key."""
    if key.startswith("within:"):
        c = key.split(":", 1)[1]
        return f"{corpus_name(c)} → {corpus_name(c)} (unseen speakers)", "speaker-independent folds"
    if key.startswith("multi:"):
        parts = key.split(":", 1)[1].split("+")
        return f"{' + '.join(corpus_name(p) for p in parts)} → {corpus_name(test)} (unseen speakers)", "multi-corpus"
    a, b = key.split("→")
    if "(all emotions)" in a:
        return f"{corpus_name(a.replace('(all emotions)', ''))} (model with all its emotions) → {corpus_name(b)}", \
            "single-corpus model, all its emotions"
    return f"{corpus_name(a)} → {corpus_name(b)}", "shared emotions"


def crosscorpus_table(report: dict | None = None) -> str:
    """Markdown: accuracy and UAR per train→test pair next to chance, raw and with speaker norm."""
    report = report if report is not None else load_report("crosscorpus.json")
    if not report:
        return "_No cross-corpus report yet (run `python bench/crosscorpus.py`)._"
    rows = ["| train → test | emotions | chance (UAR) | accuracy % | UAR % | accuracy % with speaker norm | "
            "UAR % with speaker norm |", "|---|---|---:|---:|---:|---:|---:|"]
    for key, runs in report["results"].items():
        raw, norm = runs.get("raw"), runs.get("speaker_norm")
        for test, m in (raw or norm)["by_corpus"].items():
            label, _ = _pair_name(key, test)
            n = m.get("labels_present") or (raw or norm)["labels"]
            emotions = f"{len(n)}" + (" (no calm)" if "calm" not in n else "")
            if key.startswith(("multi:",)) or "(all emotions)" in key:
                emotions += f"; model has {len((raw or norm)['labels'])}"
            mn = norm["by_corpus"][test] if norm else None
            rows.append(f"| {label} | {emotions} | {_pct((raw or norm)['chance_uar'])} | {_pct(raw and m['accuracy'])} | "
                        f"{_pct(raw and m['uar'])} | {_pct(mn and mn['accuracy'])} | {_pct(mn and mn['uar'])} |")
    return "\n".join(rows)


def robustness_table(report: dict | None = None, *, reports: dict[str, dict] | None = None,
                     recipes: tuple[str, ...] = ("standard", "robust", "standard+speaker_norm",
                                                 "robust+speaker_norm")) -> str:
    """Markdown: accuracy per degradation for each trained model (points below clean in brackets).

    ``reports`` (``{"MLP": report, "CNN": report}``) puts several studies side by side, one column
    per study and training recipe; otherwise ``report`` (default ``robustness.json``) alone.
    ``recipes``: the training recipes shown, when present.
    """
    if reports is None:
        report = report if report is not None else load_report("robustness.json")
        reports = {"": report} if report else {}
    reports = {k: v for k, v in reports.items() if v}
    if not reports:
        return "_No robustness report yet (run `python bench/robustness.py`)._"
    columns = [(name, rep, m) for name, rep in reports.items()
               for m in recipes if m in rep["results"]]
    first = columns[0][1]["results"][columns[0][2]]
    rows = ["| test condition | " + " | ".join(f"{name + ' ' if name else ''}{m} training: accuracy % (vs clean)"
                                              for name, _, m in columns) + " |",
            "|---|" + "---:|" * len(columns)]
    for c in first:
        cells = []
        for _, rep, m in columns:
            r = rep["results"][m]
            acc, clean = (r.get(c) or {}).get("accuracy"), r["clean"]["accuracy"]
            cells.append(_pct(acc) + ("" if c == "clean" or acc is None else f" ({100 * (acc - clean):+.1f})"))
        rows.append(f"| {c} | " + " | ".join(cells) + " |")
    notes = []
    for name, rep in reports.items():
        d = rep.get("decision")
        if d:
            notes.append(f"{name + ': r' if name else 'R'}obust training changes clean accuracy by "
                         f"{-d['clean_accuracy_drop_points']:+.1f} points: "
                         f"{'kept' if d['keep_robust_training'] else 'not kept'} ({d['rule']}).")
    return "\n".join(rows) + ("\n\n" + " ".join(notes) if notes else "")


def calibration_table(report: dict | None = None) -> str:
    """Markdown: ECE before/after temperature scaling on speaker-independent folds."""
    report = report if report is not None else load_report("calibration.json")
    if not report:
        return "_No calibration report yet (run `python bench/robustness.py`)._"
    rows = ["| model | test audio | temperatures (per fold) | ECE before | ECE after | mean confidence before → after | accuracy % |",
            "|---|---|---|---:|---:|---:|---:|"]
    for m, r in report["results"].items():
        ts = ", ".join(f"{t:.2f}" for t in r["temperatures"])
        for cond, c in [("clean", r["clean"])] + [(k, v) for k, v in r.get("by_condition", {}).items()
                                                   if k in ("telephone", "white10dB", "babble10dB")]:
            rows.append(f"| {m} | {cond} | {ts if cond == 'clean' else ''} | {c['ece_before']:.3f} | {c['ece_after']:.3f} | "
                        f"{c['mean_confidence_before']:.2f} → {c['mean_confidence_after']:.2f} | {_pct(c['accuracy'])} |")
    return "\n".join(rows)


def speaker_norm_table(report: dict | None = None) -> str:
    """Markdown: accuracy with per-speaker normalisation by batch kind."""
    report = report if report is not None else load_report("speaker_norm.json")
    if not report:
        return "_No speaker-normalisation report yet (run `python bench/robustness.py`)._"
    kinds = ["all", "20", "10", "5", "single_emotion"]
    head = {"all": "all clips of the speaker", "20": "batches of 20", "10": "batches of 10", "5": "batches of 5",
            "single_emotion": "one-emotion batches"}
    rows = ["| model | no normalisation | " + " | ".join(head[k] for k in kinds) + " |",
            "|---|---:|" + "---:|" * len(kinds)]
    for m, r in report["models"].items():
        cells = [_pct(r["batches"].get(k, {}).get("accuracy")) for k in kinds]
        base = "–" if m.endswith("speaker_norm") else _pct(r.get("no_normalisation_clean"))
        rows.append(f"| {m} | {base} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def markdown_summary(root: str | os.PathLike | None = None) -> str:
    """Every study's table with headings (for the README): the MLP's, then the CNN's and the bundled models'."""
    def get(name):  # {} (not None) when missing, so a table never falls back to the default folder
        return load_report(name, root) or {}

    cnn = STUDIES["cnn"]
    return "\n\n".join([
        "#### Cross-corpus (accuracy and UAR in %, chance = 1 / number of emotions)", crosscorpus_table(get("crosscorpus.json")),
        "#### Robustness (RAVDESS, speaker-independent)", robustness_table(get("robustness.json")),
        "#### Calibration (expected calibration error, speaker-independent)", calibration_table(get("calibration.json")),
        *[part for name, what in (("calibration_inner5.json", "the same with 5 inner folds for fitting T"),
                                  ("calibration_mlp.json", "the bundled MLP's network parameters"))
          if get(name) for part in (f"Follow-up, {what}:", calibration_table(get(name)))],
        "#### Per-speaker normalisation (batch mode, RAVDESS, speaker-independent, accuracy %)",
        speaker_norm_table(get("speaker_norm.json")),
        *[part for head, table in (
            ("#### The bundled models on corpora they never heard", bundled_table(get(BUNDLED))),
            ("#### CNN: cross-corpus (accuracy and UAR in %)", crosscorpus_table(get(cnn["crosscorpus"]))),
            ("#### CNN: robustness (RAVDESS, speaker-independent)", robustness_table(get(cnn["robustness"]))),
            ("#### CNN: calibration (temperature fitted on the validation speakers of each training side)",
             calibration_table(get(cnn["calibration"]))))
          if not table.startswith("_No") and table for part in (head, table)],
    ])


def robustness_chart(report: dict | None = None, *, root: str | os.PathLike | None = None):
    """The Models tab's plotly chart: accuracy per degradation, one bar series per model and
    training recipe (``report`` alone: that one study; default: the MLP's and the CNN's)."""
    studies = {"": report} if report is not None else {
        kind.upper(): load_report(files["robustness"], root) or {} for kind, files in STUDIES.items()}
    series, conditions, chance = {}, None, None
    for kind, rep in studies.items():
        if not rep:
            continue
        models = [m for m in ("standard", "robust") if m in rep["results"]] or list(rep["results"])
        conditions = conditions or list(rep["results"][models[0]])
        chance = chance or rep.get("chance_uar")
        for m in models:
            name = f"{kind}, {m} training" if kind else f"{m} training"
            series[name] = [rep["results"][m].get(c, {}).get("accuracy") for c in conditions]
    if not series:
        return message_figure("No robustness report yet (run python bench/robustness.py).", title="Robustness")
    what = " and ".join(k for k, v in studies.items() if v) or "model"
    return robustness_figure(conditions, series, chance=chance,
                             title=f"{what} accuracy under degraded audio (RAVDESS, unseen speakers)")


def shipped_recipe(robustness: dict | None = None) -> str:
    """``"robust"`` when the robustness study kept robust training, else ``"standard"``."""
    robustness = robustness if robustness is not None else load_report("robustness.json")
    decision = (robustness or {}).get("decision") or {}
    return "robust" if decision.get("keep_robust_training") else "standard"


def reliability_chart(report: dict | None = None, *, model: str | None = None, kind: str = "mlp",
                      root: str | os.PathLike | None = None):
    """Reliability diagram before/after temperature scaling (speaker-independent folds) of the
    ``kind`` model (``"mlp"`` or ``"cnn"``) trained with recipe ``model`` (default: the recipe its
    robustness study kept, :func:`shipped_recipe`)."""
    files = STUDIES[kind]
    report = report if report is not None else load_report(files["calibration"], root)
    model = model or shipped_recipe(load_report(files["robustness"], root) or {})
    if not report or model not in report.get("results", {}):
        script = "robustness.py" if kind == "mlp" else "robustness_cnn.py"
        return message_figure(f"No {kind.upper()} calibration report yet (run python bench/{script}).",
                              title="Calibration")
    c = report["results"][model]["clean"]
    return reliability_figure(c["reliability_before"], c["reliability_after"], ece_before=c["ece_before"],
                              ece_after=c["ece_after"],
                              title=f"Reliability of the {model}-trained {kind.upper()}'s confidence "
                                    "(RAVDESS, unseen speakers)")


def bundled_table(report: dict | None = None, *, kind: str | None = None, version: str | None = None) -> str:
    """Markdown: the shipped models on corpora they never heard (``crosscorpus_bundled.json``);
    ``kind`` / ``version`` keep one model's rows (empty string when it is not in the report)."""
    report = report if report is not None else load_report(BUNDLED)
    if not report:
        return "" if kind else "_No report on the bundled models yet (run `python bench/crosscorpus.py --bundled`)._"
    versions = report.get("versions", {})
    rows = []
    for key, runs in report["results"].items():
        for k, r in runs.items():
            if (kind and k != kind) or (version and versions.get(k) != version):
                continue
            for test, m in r["by_corpus"].items():
                a = key.split("(")[0]
                rows.append(f"| {k.upper()} `{versions.get(k, '?')}` | {corpus_name(a)} → {corpus_name(test)} | "
                            f"{len(m.get('labels_present') or r['labels'])} of its {len(r['labels'])} | "
                            f"{_pct(r['chance_uar'])} | {_pct(m['accuracy'])} | {_pct(m['uar'])} | {m['n_test']} |")
    if not rows:
        return ""
    return "\n".join(["| model | trained → tested on | emotions in the test corpus | chance (UAR) | accuracy % | "
                      "UAR % | test clips |", "|---|---|---|---:|---:|---:|---:|", *rows])


def card_section(metadata: dict, root: str | os.PathLike | None = None) -> str:
    """Markdown for a model card: this exact model on unseen corpora (when the bundled-models report
    has its version), and the studies of its training recipe (when it was trained on RAVDESS, the
    studies' data). Empty when nothing applies, e.g. a model trained on another corpus."""
    kind = str(metadata.get("model") or "")
    version = metadata.get("version")
    parts = []
    def get(name):  # {} (not None) when missing, so a table never falls back to the default folder
        return load_report(name, root) or {}

    own = bundled_table(get(BUNDLED), kind=kind, version=version) if version else ""
    if own:
        parts += ["This model on corpora it never heard (every emotion it knows; those the test corpus lacks, "
                  "e.g. calm on TESS, can only be wrong):", own]
    corpora = (metadata.get("data") or {}).get("corpora") or {}
    files = STUDIES.get(kind)
    if files and "ravdess" in [str(c).lower() for c in corpora]:
        tables = [("Cross-corpus", crosscorpus_table(get(files["crosscorpus"]))),
                  ("Robustness to degraded audio (RAVDESS, unseen speakers)", robustness_table(get(files["robustness"]))),
                  ("Calibration (expected calibration error, unseen speakers)",
                   calibration_table(get(files["calibration"])))]
        tables = [(h, t) for h, t in tables if not t.startswith("_No")]
        if tables:
            parts.append(f"Studies of this training recipe ({kind.upper()} with fixed default parameters, seed 0, "
                         "no search; not this exact model), from the project's `reports/*.json`:")
            for head, table in tables:
                parts += [f"**{head}**", table]
    return "\n\n".join(parts)


#: The study of issue 14's levers (``python -m bench.newvoice``).
NEWVOICE = "newvoice.json"


def _mean_std(mean: float | None, std: float | None) -> str:
    """``mean ± std`` in % (the mean alone when ``std`` is None)."""
    if mean is None:
        return "–"
    return f"{100 * mean:.1f}" + ("" if std is None else f" ± {100 * std:.1f}")


def _pm(entry: Mapping, key: str) -> str:
    """``mean ± std`` over folds, in %."""
    return _mean_std(entry.get(f"{key}_mean"), entry.get(f"{key}_std") or 0)


def _weakest(entry: Mapping | None) -> str:
    """The least recalled emotion of a test (and how many emotions were never predicted)."""
    if not entry or not entry.get("recall"):
        return "–"
    recall = {k: v for k, v in entry["recall"].items()}
    worst = min(recall, key=recall.get)
    never = [k for k in recall if entry.get("predicted", {}).get(k, 1.0) == 0.0]
    return f"{worst} {_pct(recall[worst])}" + (f"; never predicted: {', '.join(never)}" if never else "")


def newvoice_table(report: dict | None = None) -> str:
    """Markdown: each lever alone and combined on RAVDESS's EmoBox folds, under ±20 dB gain, and on TESS."""
    report = load_report(NEWVOICE) if report is None else report
    if not report:
        return "_No study yet: run `python -m bench.newvoice`._"
    rows = ["| recipe | RAVDESS acc % | RAVDESS UAR % | UAR at −20 dB | UAR at +20 dB | TESS UAR % (never heard) "
            "| TESS: least recalled emotion |", "|---|---:|---:|---:|---:|---:|---|"]
    for group in ("recipes", "fusions"):
        for name, r in report.get(group, {}).items():
            clean = r.get("clean", {})
            rows.append(f"| {'fusion: ' if group == 'fusions' else ''}{name} | {_pm(clean, 'accuracy')} | "
                        f"{_pm(clean, 'uar')} | {_pct(r.get('gain-20dB', {}).get('uar'))} | "
                        f"{_pct(r.get('gain+20dB', {}).get('uar'))} | {_pct(r.get('tess', {}).get('uar'))} | "
                        f"{_weakest(r.get('tess'))} |")
    return "\n".join(rows)


#: The further levers of issue 14 (``python -m bench.levers``).
LEVERS = "levers.json"


def levers_table(report: dict | None = None) -> str:
    """Markdown: fitted fusion weights, more speakers, degradation augmentation, the reverse direction."""
    report = load_report(LEVERS) if report is None else report
    if not report or not report.get("levers"):
        return "_No study yet: run `python -m bench.levers`._"
    rows = ["| lever | RAVDESS acc % | RAVDESS UAR % | telephone UAR % | white noise 10 dB UAR % | TESS UAR % "
            "| TESS: least recalled emotion |", "|---|---:|---:|---:|---:|---:|---|"]
    lv = report["levers"]

    def row(name: str, clean: Mapping, tess: Mapping | None = None, tel: Mapping | None = None,
            noise: Mapping | None = None) -> None:
        rows.append(f"| {name} | {_pm(clean, 'accuracy')} | {_pm(clean, 'uar')} | {_pct((tel or {}).get('uar'))} | "
                    f"{_pct((noise or {}).get('uar'))} | {_pct((tess or {}).get('uar'))} | {_weakest(tess)} |")

    for name, r in lv.get("fusion", {}).items():
        if isinstance(r, Mapping) and "clean" in r:
            row(f"fusion CNN + openSMILE, {name}", r["clean"])
    for name, r in lv.get("augment", {}).items():
        row(f"openSMILE, {name}", r["original"], r.get("tess"), r.get("telephone"), r.get("white10dB"))
    for name, r in lv.get("augment", {}).items():
        if "fusion with the CNN" in r:
            f = r["fusion with the CNN"]
            row(f"fusion CNN + openSMILE ({name}), equal weights", f["original"], f.get("tess"))
    if "multicorpus" in lv:
        m = lv["multicorpus"]
        row("openSMILE, RAVDESS + TESS training (TESS: leave one speaker out, the corpus heard)", m["ravdess"],
            m.get("tess (leave one speaker out)"))
    if "tess→ravdess" in lv:
        r = lv["tess→ravdess"]
        rows.append(f"| openSMILE trained on TESS, tested on all of RAVDESS | {_pct(r.get('accuracy'))} | "
                    f"{_pct(r.get('uar'))} | – | – | – | RAVDESS: {_weakest(r)} |")
    return "\n".join(rows)


#: The speaker-enrolment study (``python -m bench.enrolment``).
ENROLMENT = "enrolment.json"
#: What each kind's features are, in the enrolment table.
FEATURE_FAMILIES = {"smile": "openSMILE ComParE + eGeMAPS, 6 461", "mlp": "handcrafted, 543"}


def _own(family: Mapping, part: str) -> str:
    """The kind's own results key of a family's study part (the one that is not an ensemble)."""
    return next((k for k in family.get(part, {}).get("results", {}) if "+" not in k), "")


def _uar_pm(entry: Mapping | None, key: str = "uar") -> str:
    """``mean ± std`` over draws, in % (the value alone for one draw)."""
    if not entry:
        return "–"
    return _mean_std(entry.get(key), (entry.get(f"{key}_std") or 0) if entry.get("draws", 1) > 1 else None)


def enrolment_table(report: dict | None = None, *, kind: str = "smile") -> str:
    """Markdown: UAR against the number of enrolment clips of the test speaker (never scored), on
    RAVDESS's EmoBox folds and RAVDESS → TESS, per head and for the head the model serves; then
    ensembles with the bundled members and the time enrolment and an adapted prediction take."""
    report = load_report(ENROLMENT) if report is None else report
    study = (report or {}).get("kinds", {}).get(kind)
    if not study:
        return "_No enrolment study yet: run `python -m bench.enrolment`._"
    parts = {"RAVDESS": study.get("ravdess", {}).get("results", {}).get(kind, {}),
             "TESS": study.get("ravdess_to_tess", {}).get("results", {}).get(kind, {})}
    rows = ["| enrolment clips of the speaker | RAVDESS UAR % (served) | z head | mean head | same clips unadapted | "
            "RAVDESS accuracy % (served) | RAVDESS → TESS UAR % (served) | z head | mean head | same clips unadapted |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    r0 = {name: p.get("k0") for name, p in parts.items()}
    rows.append(f"| none (k = 0) | {_pct((r0['RAVDESS'] or {}).get('uar'))} | | | | "
                f"{_pct((r0['RAVDESS'] or {}).get('accuracy'))} | {_pct((r0['TESS'] or {}).get('uar'))} | | | |")
    for enrol in ("random", "neutral"):
        sizes = sorted({int(k) for p in parts.values() for k in p.get(enrol, {})})
        for k in sizes:
            cells = []
            for name in ("RAVDESS", "TESS"):
                by = parts[name].get(enrol, {}).get(str(k), {})
                served = by.get("served")
                cells.append([_uar_pm(served), _uar_pm(by.get("z")), _uar_pm(by.get("mean")),
                              _pct((served or {}).get("base_uar"))])
                if name == "RAVDESS":
                    cells[-1].append(_uar_pm(served, "accuracy"))
            what = f"{k} random" if enrol == "random" else f"{k} neutral only"
            rows.append(f"| {what} | " + " | ".join(c for group in cells for c in group) + " |")
    out = ["\n".join(rows)]
    ensembles = {name: res for name, res in study.get("ravdess", {}).get("results", {}).items() if name != kind}
    if ensembles:
        sizes = sorted({int(k) for res in ensembles.values() for k in res.get("random", {})})
        lines = ["| ensemble (equal weights; only the " + kind + " member adapts) | k = 0 | "
                 + " | ".join(f"k = {k}" for k in sizes) + " |", "|---|---:|" + "---:|" * len(sizes)]
        for name, res in ensembles.items():
            cells = [_pct(res.get("k0", {}).get("uar"))]
            cells += [_uar_pm(res.get("random", {}).get(str(k), {}).get("served")) for k in sizes]
            lines.append(f"| {name.replace('+', ' + ')} | " + " | ".join(cells) + " |")
        out.append("\n".join(lines))
    families = report.get("kinds", {})
    if len(families) > 1:
        sizes = sorted({int(k) for f in families.values() for part in ("ravdess", "ravdess_to_tess")
                        for k in f.get(part, {}).get("results", {}).get(_own(f, part), {}).get("random", {})})
        lines = ["| model (features) | test | k = 0 | " + " | ".join(f"k = {k}" for k in sizes) + " |",
                 "|---|---|---:|" + "---:|" * len(sizes)]
        for name, f in families.items():
            for part, test in (("ravdess", "RAVDESS"), ("ravdess_to_tess", "RAVDESS → TESS")):
                res = f.get(part, {}).get("results", {}).get(name)
                if not res:
                    continue
                cells = [_pct(res.get("k0", {}).get("uar"))]
                cells += [_uar_pm(res.get("random", {}).get(str(k), {}).get("served")) for k in sizes]
                lines.append(f"| {name} ({FEATURE_FAMILIES.get(name, name)}) | {test} | " + " | ".join(cells) + " |")
        out.append("By feature family (UAR %, served rule, random enrolment clips):\n\n" + "\n".join(lines))
    t = study.get("timing")
    if t:
        p = t["predict_s"]
        out.append(f"Enrolment of 16 files (decoding and features): {t['enrol_16_files_s']['median']:.1f} s. One "
                   f"prediction of a file: {1000 * p['without_profile_median']:.0f} ms without a profile, "
                   f"{1000 * p['with_profile_median']:.0f} ms with one (median difference "
                   f"{1000 * p['difference_median']:+.1f} ms; the standardisation and the adapted head alone "
                   f"{1000 * t['standardise_and_head_s']:.1f} ms). A profile is {t['profile_json_bytes'] / 1000:.0f} kB "
                   "of JSON.")
    return "\n\n".join(out)


def enrolment_chart(report: dict | None = None, *, kind: str = "smile",
                    root: str | os.PathLike | None = None):
    """The Models tab's enrolment curve: UAR against k random enrolment clips of the test speaker, as the
    model serves a profile of k clips (k = 0: unadapted), on RAVDESS's EmoBox folds, RAVDESS → TESS and,
    when measured, the ensembles with the bundled members (``reports/enrolment.json``)."""
    report = load_report(ENROLMENT, root) if report is None else report
    study = (report or {}).get("kinds", {}).get(kind)
    if not study:
        return message_figure("No enrolment study yet (run python -m bench.enrolment).", title="Enrolment")
    series, spread, chance = {}, {}, {}
    parts = [("ravdess", kind, "RAVDESS (EmoBox folds)"), ("ravdess_to_tess", kind, "RAVDESS → TESS")]
    parts += [("ravdess", name, f"ensemble {name.replace('+', ' + ')}, RAVDESS")
              for name in study.get("ravdess", {}).get("results", {}) if name != kind]
    ks = sorted({int(k) for part, name, _ in parts
                 for k in study.get(part, {}).get("results", {}).get(name, {}).get("random", {})})
    ks = [0, *ks]
    for part, name, title in parts:
        res = study.get(part, {}).get("results", {}).get(name)
        if not res:
            continue
        served = [res.get("random", {}).get(str(k), {}).get("served") or {} for k in ks[1:]]
        series[title] = [res.get("k0", {}).get("uar", float("nan")), *(s.get("uar", float("nan")) for s in served)]
        spread[title] = [0.0, *(s.get("uar_std", 0.0) for s in served)]
        if name == kind:
            chance[title] = 1 / len(study[part]["labels"])
    return enrolment_curve(ks, series, std=spread, chance=chance,
                           title=f"Adapting to a voice ({kind}): UAR against k random enrolment clips of the speaker")


#: The timeline self-adaptation study (``python -m bench.timeline_adapt``).
TIMELINE_ADAPT = "timeline_adapt.json"


def timeline_adapt_table(report: dict | None = None) -> str:
    """Markdown: segment UAR of recordings of k clips of an unseen actor, unadapted and adapted to their
    own segments (mean ± std over draws), the paired gain of each draw, and the default it chose."""
    report = load_report(TIMELINE_ADAPT) if report is None else report
    if not report or not report.get("results"):
        return "_No timeline self-adaptation study yet: run `python -m bench.timeline_adapt`._"
    rows = ["| clips in the recording | voiced segments (median, range) | UAR % unadapted | UAR % adapted to "
            "its own segments | gain, points, per draw |", "|---:|---:|---:|---:|---:|"]
    for k, r in sorted(report["results"].items(), key=lambda kv: int(kv[0])):
        seg = r["segments"]
        gains = ", ".join(f"{100 * g:+.1f}" for g in r["gain_per_draw"])
        off = _mean_std(r["off"]["uar"], r["off"]["uar_std"])
        adapted = (_mean_std(r["self"]["uar"], r["self"]["uar_std"]) if r.get("not_adapted", 0) < r.get("recordings", 1)
                   else "not adapted (< 4 segments)")
        rows.append(f"| {k} | {seg['median']:g} ({seg['min']}–{seg['max']}) | {off} | {adapted} | {gains} |")
    chosen = report.get("default_from_segments")
    cost = report.get("cost") or {}
    note = (f"Self-adaptation is the timeline's default (`adapt=\"auto\"`) from {chosen} voiced segments: from "
            f"{report.get('helps_from_clips')} clips on, it gained in every draw at that length and every longer one."
            if chosen else "Self-adaptation never gained in every draw at a length and all longer ones: it is not "
                           "the default.")
    if cost:
        note += (f" It costs one more feature pass over the segments: a {cost['recording_s']:.0f} s recording of "
                 f"{cost['segments']} segments took {cost['timeline_s_off']:.1f} s unadapted, "
                 f"{cost['timeline_s_self']:.1f} s adapted to itself.")
    return "\n".join(rows) + "\n\n" + note


def predicted_share_table(sources: Sequence[tuple[str, dict | None]]) -> str:
    """Markdown: how a model trained on one corpus labels another's clips (share of the test clips
    given each label, from the confusion matrices), and which of the test corpus' emotions it never
    gives: the collapse check, in both directions.

    ``sources``: (name, report) pairs; a report is ``crosscorpus*.json`` (the ``raw`` run of each
    cross-corpus pair) or ``crosscorpus_bundled.json`` (one row per bundled model).
    """
    rows = []
    for name, report in sources:
        for key, runs in ((report or {}).get("results") or {}).items():
            if "→" not in key or key.startswith(("within:", "multi:")):
                continue
            versions = report.get("versions") or {}
            runs = {"raw": runs["raw"]} if "raw" in runs else runs  # a study's pair, or each bundled model
            for run_name, r in runs.items():
                for test, confusion in (r.get("confusion") or {}).items():
                    present = r["by_corpus"][test].get("labels_present") or r["labels"]
                    given = [sum(col) for col in zip(*confusion)]
                    total = sum(given) or 1
                    share = dict(zip(r["labels"], given))
                    who = name if run_name == "raw" else f"{name} {run_name.upper()} `{versions.get(run_name, '?')}`"
                    never = [lab for lab in present if share.get(lab, 0) == 0]
                    rows.append(f"| {who} | {_pair_name(key, test)[0]} | "
                                + " | ".join(_pct(share[e] / total) if e in share else "–" for e in EMOTIONS)
                                + f" | {', '.join(never) or 'none'} |")
    if not rows:
        return ""
    return "\n".join(["| model | trained → tested on | " + " | ".join(EMOTIONS) + " | never given (of the test "
                      "corpus' emotions) |", "|---|---|" + "---:|" * len(EMOTIONS) + "---|", *rows])


def readme_tables(root: str | os.PathLike | None = None) -> str:
    """The README's block of study tables (``python -m ser report`` writes it; a test compares)."""
    def get(name):
        return load_report(name, root) or {}

    mlp, cnn = STUDIES["mlp"], STUDIES["cnn"]
    parts = [
        ("**A new voice: each lever alone and combined** (RAVDESS, EmoBox's six speaker-independent folds, "
         "mean ± std over folds; the same test clips 20 dB quieter and louder; TESS never heard; "
         "`python -m bench.newvoice`):", newvoice_table(get(NEWVOICE))),
        ("**A new voice: further levers** (openSMILE recipe with C = 0.01 unless a fusion; RAVDESS EmoBox folds, "
         "mean ± std over folds; fusion weights chosen per test fold on the other folds' out-of-fold "
         "predictions; `python -m bench.levers`):", levers_table(get(LEVERS))),
        ("**Adapt to a voice: speaker enrolment** (openSMILE model; each test speaker enrols k unlabelled clips of "
         "its own, which are never scored; heads fitted on training speakers standardised the same way; UAR % "
         "mean ± std over 3 draws; *served*: the head the model uses for k clips; `python -m bench.enrolment`):",
         enrolment_table(get(ENROLMENT))),
        ("**The bundled models on a corpus they never heard** (real prediction path, file by file):",
         bundled_table(get(BUNDLED))),
        ("**Labels given on a corpus never heard** (% of the test clips given each label, whatever their true "
         "emotion; no collapse means every emotion of the test corpus is given to some clips; from the same "
         "reports' confusion matrices):",
         predicted_share_table([("bundled", get(BUNDLED)), ("MLP recipe", get(mlp["crosscorpus"])),
                                ("CNN recipe", get(cnn["crosscorpus"]))])),
        ("**Cross-corpus, MLP recipe** (accuracy and UAR in %; speaker norm: per-speaker standardisation, "
         "transductive):", crosscorpus_table(get(mlp["crosscorpus"]))),
        ("**Cross-corpus, CNN recipe:**", crosscorpus_table(get(cnn["crosscorpus"]))),
        ("**Robustness** (RAVDESS, 6 folds of unseen actors; test audio degraded before trimming; robust training "
         "adds 2 randomly degraded copies of each training clip):",
         robustness_table(reports={"MLP": get(mlp["robustness"]), "CNN": get(cnn["robustness"])},
                          recipes=("standard", "robust"))),
        ("**Calibration, MLP** (temperature fitted per fold on inner out-of-fold predictions of the training "
         "actors; ECE = expected calibration error):", calibration_table(get(mlp["calibration"]))),
        ("**Calibration, CNN** (temperature fitted per fold on the 2 validation speakers of the training side):",
         calibration_table(get(cnn["calibration"]))),
    ]
    return "\n\n".join(part for head, table in parts if table and not table.startswith("_No")
                        for part in (head, table))


# -- the bundled models' results ---------------------------------------------------------------
START, END = "<!-- results:start -->", "<!-- results:end -->"
STUDIES_START, STUDIES_END = "<!-- studies:start -->", "<!-- studies:end -->"
TIMELINE_START, TIMELINE_END = "<!-- timeline-adapt:start -->", "<!-- timeline-adapt:end -->"
PROTOCOL_NAMES = {"speaker_independent": "speaker-independent (6 folds by actor)",
                  "stratified": "stratified 75/25 clip split"}




#: The bundled models, in the order tables list them.
MODEL_ORDER = ("mlp", "cnn", "smile", "ensemble")
#: Columns of every metrics table: metadata key and heading.
METRIC_COLUMNS = (("accuracy", "accuracy"), ("uar", "UAR"), ("macro_f1", "macro F1"), ("n_test", "test clips"))


def metrics_table(rows: Sequence[tuple[Sequence[str], Mapping]], *, lead: Sequence[str] = ("protocol",),
                  percent: bool = False) -> str:
    """The one metrics table (Markdown) of the README, the CLI, the app and the cards.

    Parameters
    ----------
    rows : sequence of (leading cells, metrics)
        ``metrics`` as stored in ``metadata.json`` (``accuracy``, ``uar``, ``macro_f1``, ``n_test``).
    lead : headings of the leading cells
    percent : show rates as percentages with one decimal (else as fractions with three)
    """
    heads = [*lead, *(f"{h} %" if percent and k != "n_test" else h for k, h in METRIC_COLUMNS)]
    out = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(lead) + "---:|" * len(METRIC_COLUMNS)]
    for cells, m in rows:
        values = [str(m.get(k, "")) if k == "n_test" else (_pct(m.get(k)) if percent else _fraction(m.get(k)))
                  for k, _ in METRIC_COLUMNS]
        out.append("| " + " | ".join([*cells, *values]) + " |")
    return "\n".join(out)


def _fraction(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def _protocol_rows(metadata: Mapping) -> list[tuple[list[str], Mapping]]:
    """Rows of a run's protocols (``metadata["metrics"]``), then of the speaker-independent folds
    tested on degraded audio (``metadata["robustness"]``)."""
    rows = [([PROTOCOL_NAMES.get(p, p)], m) for p, m in metadata.get("metrics", {}).items()]
    si = PROTOCOL_NAMES["speaker_independent"]
    return rows + [([f"{si}, {c} test audio"], m) for c, m in (metadata.get("robustness") or {}).items()]


def protocol_table(metadata: Mapping) -> str:
    """:func:`metrics_table` of one run's protocols and degraded test conditions."""
    return metrics_table(_protocol_rows(metadata))


def results_table(models: str | Path) -> str:
    """Markdown: one row per bundled model and protocol, from ``models/<kind>/metadata.json``."""
    rows, data = [], {}
    for kind in MODEL_ORDER:
        path = Path(models) / kind / "metadata.json"
        if not path.is_file():
            continue
        meta = json.loads(path.read_text(encoding="utf-8"))
        data = data or meta.get("data", {})
        rows += [([kind, str(meta.get("version", "")), *cells], m) for cells, m in _protocol_rows(meta)]
    if not rows:
        return "_No bundled model yet._"
    note = (f"\nTrained and evaluated on {data.get('clips', '?')} clips of {data.get('speakers', '?')} speakers "
            f"({', '.join(data.get('corpora', {}))}); chance is 12.5 % for 8 emotions.") if data else ""
    return metrics_table(rows, lead=("model", "version", "protocol"), percent=True) + note


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
    readme = Path(readme)
    text = readme.read_text(encoding="utf-8")
    new = replace_block(text, START, END, results_table(models))
    if STUDIES_START in new:
        new = replace_block(new, STUDIES_START, STUDIES_END, readme_tables(reports))
    if TIMELINE_START in new:
        new = replace_block(new, TIMELINE_START, TIMELINE_END, timeline_adapt_table(load_report(TIMELINE_ADAPT, reports)))
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text
