"""What the app shows of the API's values: Markdown, table rows and figures, without Gradio.

Every function takes plain values (the JSON the endpoints return: :func:`ser.serving.service.predict`,
:func:`~ser.serving.service.timeline`, :func:`~ser.serving.service.analyze`,
:func:`~ser.serving.service.training_summary`, :func:`~ser.serving.service.list_models`,
:func:`ser.serving.batch.predict_batch`, :func:`ser.serving.timeline.stream_update`) and returns
text, rows and plotly figures; ``app.py`` only puts them into components. So what a page shows is
what the API returned, and each view is tested without a server (``tests/test_presentation.py``).
Metrics tables are :func:`ser.reports.protocol_table`, the one formatter of the README, the CLI and
the model cards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import plotly.graph_objects as go

from .. import reports
from ..errors import ParameterError
from ..plots import (confusion_matrix, history_curves, importance_bar, message_figure, probabilities_bar,
                     signal_math_figures)
from .timeline import figure as timeline_figure

__all__ = [
    "MATH_FIGURES",
    "VERSION_COLUMNS",
    "PredictionView",
    "intro",
    "accepted_note",
    "prediction_view",
    "timeline_view",
    "analysis_numbers",
    "analysis_view",
    "training_view",
    "models_view",
    "batch_table",
    "live_view",
    "live_stopped",
    "studies_view",
    "adaptation_line",
    "enrolment_view",
    "enrolment_study_view",
]

#: The signal-maths figures of the Math tab, in the order of its plots.
MATH_FIGURES = ("spectrum", "pitch", "spectrogram", "logmel", "pole_zero", "frequency_response", "s_plane",
                "responses")
#: Columns of the Models tab's table of saved versions.
VERSION_COLUMNS = ["model", "version", "created", "serving", "speaker-indep. acc", "speaker-indep. UAR",
                   "stratified acc", "stratified UAR", "clips", "speakers", "status"]


def intro(*, public: bool) -> str:
    """The page's heading and one paragraph; a public server says admin actions need the token."""
    lock = "This server is **public**: training, model switching and Hub actions need the admin token." if public else ""
    return ("# ser — speech emotion recognition\n"
            "Record or upload speech, choose a model, and see which emotion the voice carries, how sure the "
            "model is, how it changes over time, and the signal maths behind it. " + lock)


def accepted_note(accepted: str, *, max_bytes: int, uncertain_below: float) -> str:
    """What the Predict tab accepts, and when a result is called uncertain."""
    return (f"Accepted: {accepted}; up to {max_bytes / 2**20:.0f} MiB. "
            f"A result below {uncertain_below:.0%} is reported as uncertain.")


@dataclass(frozen=True)
class PredictionView:
    """A prediction as the page shows it."""

    title: str  #: the label component's heading ("Emotion" or "Emotion (uncertain)")
    probabilities: dict  #: {emotion: probability}
    figure: go.Figure  #: the bar of every probability, with the uncertainty threshold
    verdict: str  #: Markdown: the emotion (or "Uncertain") as a heading, confidence, model, warnings


def prediction_view(result: Mapping[str, Any]) -> PredictionView:
    """:class:`PredictionView` of a ``/predict`` result."""
    probs, label, conf = dict(result["probabilities"]), result["label"], result["confidence"]
    where = f"{result['model'].upper()} {result.get('version', '')}".strip()
    if result["uncertain"]:
        verdict = (f"### Uncertain\nThe most likely emotion, **{label}**, has only {conf:.0%} "
                   f"(below the {result['threshold']:.0%} threshold), so the model is not sure. ({where})")
        title = "Emotion (uncertain)"
    else:
        verdict = f"### {label.capitalize()}\nConfidence {conf:.0%} ({where})"
        title = "Emotion"
    line = adaptation_line(result.get("adaptation"))
    if line:
        verdict += f"\n\n{line}"
        if (result.get("adaptation") or {}).get("adapted"):
            title += ", adapted to your voice"
    for w in result.get("warnings") or []:
        verdict += f"\n\n⚠ {w}"
    return PredictionView(title=title, probabilities=probs,
                          figure=probabilities_bar(probs, threshold=result["threshold"]), verdict=verdict)


def timeline_view(result: Mapping[str, Any], *, min_s: float) -> tuple[go.Figure | None, str]:
    """The timeline figure (``None`` when there is none to draw) and its note, of a ``/timeline`` result;
    recordings shorter than ``min_s`` seconds or with one segment are one label."""
    segments, summary = result["segments"], result["summary"]
    if not segments:
        return None, "No voiced segment was found for a timeline."
    if result["duration_s"] < min_s or len(segments) < 2:
        return None, (f"The recording lasts {result['duration_s']:.1f} s: one label covers it "
                      f"(a timeline is drawn from {min_s:g} s).")
    seconds = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(summary["seconds"].items(), key=lambda kv: -kv[1])
                        if v > 0)
    line = adaptation_line(result.get("adaptation"))
    return timeline_figure(result), (f"**Dominant: {summary['dominant']}** over {len(segments)} voiced segments "
                                     f"({summary['voiced_s']:.1f} s of voice: {seconds})."
                                     + (f" {line}" if line else ""))


def analysis_numbers(a: Mapping[str, Any]) -> str:
    """The numbers of an ``/analyze`` result as Markdown."""
    lines = [f"**Clip**: {a['duration_s']:.2f} s at {a['sr']} Hz ({a['n_samples']} samples, silence trimmed)."]
    fft = a["fft"]
    if fft.get("available"):
        peaks = ", ".join(f"{p['freq_hz']:.0f} Hz" for p in fft["peaks"])
        lines.append(f"**FFT**: N = {fft['n']}, resolution {fft['resolution_hz']:.3f} Hz; strongest peaks {peaks}.")
    f0 = a["f0"]
    if f0.get("available"):
        lines.append(f"**F0**: {f0['fft_hz']:.1f} Hz from the FFT (autocorrelation) vs {f0['yin_hz']:.1f} Hz from "
                     f"the pitch feature (yin); {f0['agreement_5pct']:.0%} of voiced frames agree within 5 %; "
                     f"voiced fraction {f0['voiced_fraction']:.0%}.")
    pv = a["parseval"]
    lines.append(f"**Parseval**: Σ|x[n]|² = {pv['time_energy']:.6g}, (1/N)Σ|X[k]|² = {pv['freq_energy']:.6g}, "
                 f"relative error {pv['relative_error']:.1e}. STFT: frame energies {pv['stft']['frame_energy_sum']:.6g} "
                 f"= {pv['stft']['window_norm']:g} × signal energy (error {pv['stft']['relative_error']:.1e}).")
    z, lap = a["z"], a["laplace"]
    if z.get("available"):
        lines.append(f"**z-plane**: all-pole model of order {z['order']} on a {z['frame_ms']:g} ms frame at "
                     f"{z['frame_start_s']:.2f} s; {'stable' if z['stable'] else 'UNSTABLE'} "
                     f"(max pole radius {z['max_pole_radius']:.4f}).")
        form = ", ".join(f"F{i + 1} {f['freq_hz']:.0f} Hz (B {f['bandwidth_hz']:.0f} Hz)"
                         for i, f in enumerate(lap.get("formants", [])))
        lines.append(f"**s-plane**: s = f_s·ln z; formants {form or 'none found'}; impulse invariance error "
                     f"{lap['invariance_error']:.1e}.")
    else:
        lines.append(f"**z/s-plane**: {z.get('message')}")
    lines += [f"⚠ {m}" for m in a.get("messages", [])]
    return "\n\n".join(lines)


def analysis_view(result: Mapping[str, Any]) -> tuple[str, list[go.Figure]]:
    """The numbers and the figures (in :data:`MATH_FIGURES` order) of an ``/analyze`` result."""
    figs = signal_math_figures(dict(result))
    return analysis_numbers(result), [figs[k] for k in MATH_FIGURES]


def _words(name: str) -> str:
    return name.replace("_", " ")


def training_view(summary: Mapping[str, Any]) -> tuple[str, go.Figure, go.Figure, go.Figure, str]:
    """A ``/train`` result: Markdown (heading, :func:`ser.reports.protocol_table`, each protocol in words),
    the two confusion matrices (speaker-independent, stratified), the CNN's curves or the MLP's feature
    importance, and the most confused pairs."""
    metrics = summary.get("metrics") or {}
    data = summary.get("data") or {}
    head = (f"### Saved {str(summary.get('model', '')).upper()} {summary.get('version', '')}\n"
            f"Trained on {data.get('clips', '?')} clips of {data.get('speakers', '?')} speakers; "
            f"now serving predictions.\n\n")
    notes = "\n".join(f"- **{reports.PROTOCOL_NAMES.get(n, _words(n))}**: {m.get('protocol', '')}"
                      for n, m in metrics.items())
    figs = []
    for name in ("speaker_independent", "stratified"):
        m = metrics.get(name)
        figs.append(confusion_matrix(m["confusion"], m["labels"], title=f"Confusion: {_words(name)}")
                    if m else message_figure(f"No {_words(name)} protocol in this run."))
    history = summary.get("history")
    importance = (summary.get("feature_importance") or {}).get("speaker_independent")
    if history and history.get("loss"):  # CNN: the final model's curves, the folds' faintly
        extra = history_curves(history, title="Training and validation curves")
    elif importance:
        extra = importance_bar(importance)
    else:
        extra = message_figure("Feature importance was not computed (enable it) and this model has no curves.")
    errors = []
    for name, m in metrics.items():
        for pair in (m.get("error_analysis") or [])[:4]:
            a, b = pair["pair"]
            errors.append(f"- {_words(name)}: **{a} ↔ {b}**, {pair['count']} clips "
                          f"({a} as {b}: {pair.get('a_as_b', '?')}, {b} as {a}: {pair.get('b_as_a', '?')})")
    errors_md = "### Most confused pairs\n" + ("\n".join(errors) if errors else "none")
    return head + reports.protocol_table(summary) + "\n\n" + notes, figs[0], figs[1], extra, errors_md


def models_view(listing: Mapping[str, Any]) -> tuple[list[list], str, list[str]]:
    """A ``/models`` result: the table's rows (:data:`VERSION_COLUMNS`), who serves (Markdown), and the
    versions one may choose (blank first: the newest)."""

    def num(d: Mapping, k: str):
        return None if d.get(k) is None else round(float(d[k]), 3)

    rows = []
    for v in listing["versions"]:
        si, st, data = v.get("speaker_independent") or {}, v.get("stratified") or {}, v.get("data") or {}
        rows.append([v["model"], v["version"], v.get("created") or "", "✔" if v["serving"] else "",
                     num(si, "accuracy"), num(si, "uar"), num(st, "accuracy"), num(st, "uar"),
                     data.get("clips"), data.get("speakers"), "ok" if v["ok"] else f"damaged: {v['error']}"])
    serving = ", ".join(f"{k}: {v or 'not loaded yet'}" for k, v in listing["serving"].items())
    choices = [""] + [v["version"] for v in listing["versions"] if v["ok"]]
    return rows, f"**Serving** — {serving}", choices


def batch_table(rows: Any) -> tuple[list[str], list[list]]:
    """Headers and cells of ``/predict_batch``'s rows (columns of the first row).

    Raises
    ------
    ParameterError
        ``rows`` is not a list of objects (anyone may call the renderer with anything).
    """
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ParameterError("Expected the rows of /predict_batch: a list of objects, one per file.")
    cols = list(rows[0]) if rows else []
    return cols, [[r.get(c, "") for c in cols] for r in rows]


def live_view(result: Mapping[str, Any]) -> tuple[dict, str]:
    """A live update (:func:`ser.serving.timeline.stream_update`): the smoothed probabilities and a status line
    (with how the result is adapted, when a profile was in play: ``result["adaptation"]``)."""
    line = adaptation_line(result.get("adaptation"))
    return (dict(result.get("probabilities") or {}),
            f"{result['status'].capitalize()} · {result['time_s']:.0f} s" + (f" · {line}" if line else ""))


def adaptation_line(adaptation: Mapping[str, Any] | None) -> str:
    """How a result says it is adapted to a voice (``✔ adapted to your voice (8 clips)``), or why it is not;
    ``""`` when no profile was in play."""
    note = (adaptation or {}).get("note") or ""
    if not note:
        return ""
    return f"✔ {note}" if adaptation.get("adapted") else f"ℹ {note}"


def enrolment_view(status: Mapping[str, Any]) -> tuple[str, bool]:
    """A voice profile's :func:`ser.serving.enrolment.status`: its Markdown, and whether there is a
    profile to download."""
    return str(status["message"]), bool(status["n_clips"])


def live_stopped(summary: Mapping[str, Any]) -> str:
    """The end of a live session (:func:`ser.serving.timeline.stream_stop`)."""
    return f"Stopped after {summary['duration_s']:.0f} s ({summary['emotions'] or 'nothing voiced'})."


def studies_view() -> tuple[go.Figure, go.Figure, go.Figure, str]:
    """The stored studies (``reports/*.json``): robustness chart, both reliability diagrams, and the
    bundled models' cross-corpus table with its note."""
    return (reports.robustness_chart(), reports.reliability_chart(kind="mlp"), reports.reliability_chart(kind="cnn"),
            reports.STUDIES_NOTE + "\n\n" + reports.bundled_table())


def enrolment_study_view() -> go.Figure:
    """The enrolment curve of the stored study (``reports/enrolment.json``: UAR against k clips)."""
    return reports.enrolment_chart()
