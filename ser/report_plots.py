"""Plotly figures of results: a prediction and a training run's evaluation.

Arrays and dicts in, a new :class:`plotly.graph_objects.Figure` out, as in :mod:`ser.plots`
(which holds the signal-math figures and the CNN's training curves); nothing here reads files
or computes results.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

__all__ = [
    "probabilities_bar",
    "confusion_matrix",
    "importance_bar",
    "empty_figure",
]

HEIGHT = 340
_MARGIN = dict(l=70, r=20, t=60, b=50)
#: One colour per canonical emotion, stable across figures.
COLORS = {
    "neutral": "#7f7f7f", "calm": "#17becf", "happy": "#ffbf00", "sad": "#1f77b4",
    "angry": "#d62728", "fearful": "#9467bd", "disgust": "#2ca02c", "surprised": "#ff7f0e",
    "boredom": "#8c564b",
}


def _layout(fig: go.Figure, title: str, *, height: int = HEIGHT, **kwargs) -> go.Figure:
    fig.update_layout(title=dict(text=title, font=dict(size=14)), height=height, margin=_MARGIN,
                      template="plotly_white", **kwargs)
    return fig


def empty_figure(text: str, *, title: str = "") -> go.Figure:
    """A figure with no data that says why (instead of an empty plot)."""
    fig = go.Figure()
    fig.add_annotation(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=13))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, height=200)


def probabilities_bar(probabilities: Mapping[str, float], *, threshold: float | None = None,
                      title: str = "Probability of each emotion") -> go.Figure:
    """Horizontal bars of ``{emotion: p}`` in the given order; the top one outlined.

    ``threshold``: a dashed line where a top probability stops counting as certain.
    """
    labels = list(probabilities)
    values = np.array([float(probabilities[k]) for k in labels])
    top = int(values.argmax()) if len(values) else -1
    fig = go.Figure(go.Bar(
        x=values, y=labels, orientation="h", text=[f"{v:.0%}" for v in values], textposition="outside",
        marker=dict(color=[COLORS.get(k, "#636efa") for k in labels],
                    line=dict(width=[3 if i == top else 0 for i in range(len(labels))], color="#222")),
        hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    if threshold is not None:
        fig.add_vline(x=threshold, line_dash="dash", line_color="#555",
                      annotation_text=f"uncertain below {threshold:.0%}", annotation_position="top")
    fig.update_xaxes(range=[0, 1.08], tickformat=".0%", title="probability")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title)


def confusion_matrix(confusion: Sequence[Sequence[int]], labels: Sequence[str], *,
                     title: str = "Confusion matrix") -> go.Figure:
    """Counts (true emotion down, predicted across), coloured by the share of each true row."""
    cm = np.asarray(confusion, dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    fig = go.Figure(go.Heatmap(
        z=share, x=list(labels), y=list(labels), colorscale="Blues", zmin=0, zmax=1,
        text=cm.astype(int), texttemplate="%{text}", colorbar=dict(title="row share", tickformat=".0%"),
        hovertemplate="true %{y}, predicted %{x}: %{text} (%{z:.0%})<extra></extra>"))
    fig.update_xaxes(title="predicted", side="bottom")
    fig.update_yaxes(title="true", autorange="reversed")
    return _layout(fig, title, height=420)


def importance_bar(importance: Mapping[str, float], *,
                   title: str = "Feature families: accuracy drop when permuted") -> go.Figure:
    """Permutation importance per feature family, largest first."""
    items = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)
    fig = go.Figure(go.Bar(x=[v for _, v in items], y=[k for k, _ in items], orientation="h",
                           marker_color="#1f77b4", hovertemplate="%{y}: %{x:+.3f}<extra></extra>"))
    fig.update_xaxes(title="accuracy drop")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, height=max(240, 40 + 26 * len(items)))
