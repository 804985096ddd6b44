"""Plotly figures: arrays in, figure out.

A flat module of pure functions. Each takes plain arrays (or lists) and keyword options and
returns a new :class:`plotly.graph_objects.Figure`; none reads files, computes the underlying
mathematics or keeps state. Non-finite values never reach a figure: they become gaps (``None``).

Signal-math figures (data from :func:`ser.signal_math.analyze`): :func:`spectrum_figure`,
:func:`pitch_figure`, :func:`spectrogram_figure`, :func:`logmel_figure`,
:func:`pole_zero_figure`, :func:`frequency_response_figure`, :func:`s_plane_figure`,
:func:`responses_figure`, and :func:`signal_math_figures` which builds all of them from
``analyze``'s result.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

__all__ = [
    "message_figure",
    "spectrum_figure",
    "pitch_figure",
    "spectrogram_figure",
    "logmel_figure",
    "pole_zero_figure",
    "frequency_response_figure",
    "s_plane_figure",
    "responses_figure",
    "signal_math_figures",
    "emotion_timeline_figure",
    "history_curves",
    "probabilities_bar",
    "confusion_matrix",
    "importance_bar",
]

ArrayLike = Sequence[float] | np.ndarray

HEIGHT = 360
_MARGIN = dict(l=60, r=20, t=60, b=50)
_GRID = "#e5e5e5"
_POLE = dict(symbol="x", size=10, line=dict(width=2), color="#d62728")
_ZERO = dict(symbol="circle-open", size=11, line=dict(width=2), color="#1f77b4")
# Figures are built in one go.Figure(data, layout) call: plotly's update_* helpers, add_vline,
# make_subplots and named templates each re-validate or deep-copy the figure (8–30 ms apiece).


def _clean(x: Any) -> np.ndarray | list:
    """Float array for plotly; with any non-finite value, a list with ``None`` (a gap) there."""
    arr = np.asarray([] if x is None else x, dtype=float)
    if arr.size == 0 or np.isfinite(arr).all():
        return arr
    obj = arr.astype(object)
    obj[~np.isfinite(arr)] = None
    return obj.tolist()


def _axis(title: str, **kwargs: Any) -> dict:
    return dict(title=dict(text=title), gridcolor=_GRID, zerolinecolor="#bbb", **kwargs)


def _vline(x: float, text: str, *, dash: str = "dot", color: str = "#555",
           yanchor: str = "bottom") -> tuple[dict, dict]:
    """A vertical line over the whole plot height and its label (a shape and an annotation)."""
    shape = dict(type="line", x0=x, x1=x, y0=0, y1=1, yref="paper",
                 line=dict(dash=dash, width=1.5, color=color))
    label = dict(x=x, y=1, yref="paper", text=text, showarrow=False, xanchor="left",
                 yanchor=yanchor, font=dict(size=11, color=color))
    return shape, label


def _figure(data: list, title: str, *, height: int = HEIGHT, **layout: Any) -> go.Figure:
    base = dict(title=dict(text=title, font=dict(size=14)), height=height, margin=_MARGIN,
                plot_bgcolor="white", paper_bgcolor="white")
    base.update(layout)
    return go.Figure(data=data, layout=base)


def message_figure(text: str, *, title: str = "") -> go.Figure:
    """An empty figure that states why there is nothing to plot.

    Parameters
    ----------
    text : str
        The message, shown in the middle of the plot area.
    title : str
    """
    note = dict(text=text, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                font=dict(size=13))
    return _figure([], title, height=220, annotations=[note], xaxis=dict(visible=False),
                   yaxis=dict(visible=False))


def spectrum_figure(
    freq_hz: ArrayLike,
    magnitude_db: ArrayLike,
    *,
    peaks_hz: ArrayLike = (),
    peaks_db: ArrayLike = (),
    f0_hz: float | None = None,
    f0_feature_hz: float | None = None,
    title: str = "FFT magnitude spectrum",
) -> go.Figure:
    """Magnitude spectrum in dB over frequency in Hz, with its peaks and F0 estimates.

    Parameters
    ----------
    freq_hz, magnitude_db : array [shape=(n,)]
    peaks_hz, peaks_db : array [shape=(k,)]
        Marked with their frequency.
    f0_hz, f0_feature_hz : float, optional
        F0 from the FFT and from the pitch feature, drawn as vertical lines.
    """
    data = [go.Scatter(x=_clean(freq_hz), y=_clean(magnitude_db), mode="lines", name="|X(f)|",
                       line=dict(width=1, color="#1f77b4"))]
    if len(peaks_hz):  # peaks of speech crowd below 1 kHz: their values are in the hover and key
        data.append(go.Scatter(x=_clean(peaks_hz), y=_clean(peaks_db), mode="markers",
                               name="peaks", marker=dict(size=8, color="#d62728"),
                               hovertemplate="%{x:.1f} Hz, %{y:.1f} dB<extra>peak</extra>"))
    shapes, keys = [], []
    for value, name, dash in ((f0_hz, "F0 (FFT)", "dash"), (f0_feature_hz, "F0 (yin)", "dot")):
        if value is not None and math.isfinite(value):
            shapes.append(_vline(value, "", dash=dash, color="#2ca02c")[0])
            keys.append(f"{name} {value:.0f} Hz")
    if len(peaks_hz):
        keys.append("peaks " + ", ".join(f"{f:.0f}" for f in np.asarray(peaks_hz, dtype=float))
                    + " Hz")
    key = dict(x=1, y=1, xref="paper", yref="paper", xanchor="right", yanchor="top",
               showarrow=False, align="right", text="<br>".join(keys), font=dict(size=11),
               bgcolor="rgba(255,255,255,0.8)")
    return _figure(data, title, showlegend=False, shapes=shapes, annotations=[key] if keys else [],
                   xaxis=_axis("frequency (Hz)"), yaxis=_axis("magnitude (dB)"))


def pitch_figure(
    times_s: ArrayLike,
    f0_fft_hz: ArrayLike,
    f0_feature_hz: ArrayLike,
    *,
    title: str = "Fundamental frequency: FFT autocorrelation vs the pitch feature (yin)",
) -> go.Figure:
    """Two F0 tracks over time; unvoiced frames (``None``/NaN) are gaps.

    Parameters
    ----------
    times_s, f0_fft_hz, f0_feature_hz : array [shape=(n_frames,)]
    """
    t = _clean(times_s)
    data = [
        go.Scatter(x=t, y=_clean(f0_fft_hz), mode="lines+markers", name="FFT (Wiener–Khinchin)",
                   marker=dict(size=4), connectgaps=False),
        go.Scatter(x=t, y=_clean(f0_feature_hz), mode="lines", name="yin (pitch feature)",
                   line=dict(dash="dot"), connectgaps=False),
    ]
    return _figure(data, title, legend=dict(orientation="h", y=-0.25),
                   xaxis=_axis("time (s)"), yaxis=_axis("F0 (Hz)"))


def spectrogram_figure(
    times_s: ArrayLike,
    freq_hz: ArrayLike,
    power_db: ArrayLike,
    *,
    dynamic_range_db: float = 80.0,
    title: str = "STFT spectrogram",
) -> go.Figure:
    """Heatmap of a spectrogram.

    Parameters
    ----------
    times_s : array [shape=(n_frames,)]
    freq_hz : array [shape=(n_freq,)]
    power_db : array [shape=(n_freq, n_frames)]
    dynamic_range_db : float
        Colours span ``[max - dynamic_range_db, max]``.
    """
    z = np.asarray(power_db, dtype=float)
    finite = z[np.isfinite(z)]
    zmax = float(finite.max()) if finite.size else 0.0
    data = [go.Heatmap(x=_clean(times_s), y=_clean(freq_hz), z=_clean(z),
                       zmin=zmax - dynamic_range_db, zmax=zmax, colorscale="Magma",
                       colorbar=dict(title=dict(text="dB")))]
    return _figure(data, title, xaxis=_axis("time (s)"), yaxis=_axis("frequency (Hz)"))


def logmel_figure(
    image: ArrayLike,
    *,
    hop_s: float,
    title: str = "Log-mel image the CNN sees (128 × 128)",
) -> go.Figure:
    """The CNN's input image: mel band (rows, low to high) against time.

    Parameters
    ----------
    image : array [shape=(n_mels, n_frames)]
        Values in ``[-1, 1]``.
    hop_s : float
        Seconds between frames.
    """
    img = np.asarray(image, dtype=float)
    data = [go.Heatmap(z=_clean(img), x=np.arange(img.shape[1]) * hop_s,
                       y=np.arange(img.shape[0]), zmin=-1, zmax=1, colorscale="Viridis",
                       colorbar=dict(title=dict(text="scaled")))]
    return _figure(data, title, xaxis=_axis("time in the window (s)"), yaxis=_axis("mel band"))


def pole_zero_figure(
    poles_re: ArrayLike,
    poles_im: ArrayLike,
    *,
    zeros_re: ArrayLike = (),
    zeros_im: ArrayLike = (),
    n_zeros_at_origin: int = 0,
    title: str = "Poles and zeros of H(z) = G / A(z)",
) -> go.Figure:
    """The z-plane with the unit circle, poles (×) and zeros (○).

    Parameters
    ----------
    poles_re, poles_im : array [shape=(p,)]
    zeros_re, zeros_im : array [shape=(q,)]
    n_zeros_at_origin : int
        Multiplicity of a zero at ``z = 0`` (``p`` for an all-pole model), written next to it.
    """
    theta = np.linspace(0.0, 2.0 * math.pi, 361)
    pr, pi = np.asarray(poles_re, dtype=float), np.asarray(poles_im, dtype=float)
    data = [
        go.Scatter(x=np.cos(theta), y=np.sin(theta), mode="lines", name="|z| = 1",
                   line=dict(color="#888", width=1), hoverinfo="skip"),
        go.Scatter(x=_clean(pr), y=_clean(pi), mode="markers", name="poles", marker=_POLE,
                   customdata=_clean(np.column_stack([np.hypot(pr, pi),
                                                      np.degrees(np.arctan2(pi, pr))])),
                   hovertemplate="z = %{x:.4f} %{y:+.4f}j<br>|z| = %{customdata[0]:.4f}, "
                   "∠ %{customdata[1]:.1f}°<extra>pole</extra>"),
    ]
    zr, zi = list(np.asarray(zeros_re, dtype=float)), list(np.asarray(zeros_im, dtype=float))
    if n_zeros_at_origin:
        zr.append(0.0)
        zi.append(0.0)
    if zr:
        data.append(go.Scatter(x=_clean(zr), y=_clean(zi), mode="markers", name="zeros",
                               marker=_ZERO))
    notes = []
    if n_zeros_at_origin > 1:
        notes.append(dict(x=0, y=0, text=f"{n_zeros_at_origin} zeros", showarrow=False,
                          xshift=32, yshift=10))
    radius = np.hypot(pr, pi)
    lim = max(1.15, 1.1 * float(np.max(radius[np.isfinite(radius)], initial=0.0)))
    return _figure(data, title, height=420, legend=dict(orientation="h", y=-0.2),
                   annotations=notes,
                   xaxis=_axis("Re z", range=[-lim, lim], constrain="domain"),
                   yaxis=_axis("Im z", range=[-lim, lim], scaleanchor="x", scaleratio=1))


def frequency_response_figure(
    freq_hz: ArrayLike,
    response_db: ArrayLike,
    spectrum_db: ArrayLike | None = None,
    *,
    formants_hz: ArrayLike = (),
    title: str = "|H(e^jω)| over the frame's spectrum",
) -> go.Figure:
    """The all-pole model's frequency response over the analysed frame's spectrum.

    Parameters
    ----------
    freq_hz, response_db : array [shape=(n,)]
    spectrum_db : array [shape=(n,)], optional
        The frame's own spectrum on the same scale.
    formants_hz : array [shape=(k,)]
        Drawn as labelled vertical lines (F1, F2, ...).
    """
    f = _clean(freq_hz)
    data = []
    if spectrum_db is not None:
        data.append(go.Scatter(x=f, y=_clean(spectrum_db), mode="lines", name="frame spectrum",
                               line=dict(width=1, color="#aaa")))
    data.append(go.Scatter(x=f, y=_clean(response_db), mode="lines", name="|H(e^jω)|",
                           line=dict(width=2, color="#d62728")))
    shapes, labels = [], []
    for i, fr in enumerate(np.asarray(formants_hz, dtype=float)):
        if math.isfinite(fr):
            shape, label = _vline(fr, f"F{i + 1}")
            shapes.append(shape)
            labels.append(label)
    return _figure(data, title, legend=dict(orientation="h", y=-0.25), shapes=shapes,
                   annotations=labels, xaxis=_axis("frequency (Hz)"),
                   yaxis=_axis("magnitude (dB)"))


def s_plane_figure(
    sigma: ArrayLike,
    omega: ArrayLike,
    *,
    formant_sigma: ArrayLike = (),
    formant_omega: ArrayLike = (),
    title: str = "Poles in the s-plane (s = f_s · ln z)",
) -> go.Figure:
    """The s-plane: poles at ``(σ, ω / 2π)``, the jω axis, formant poles labelled.

    Parameters
    ----------
    sigma, omega : array [shape=(p,)]
        ``Re s`` (1/s) and ``Im s`` (rad/s) of every pole.
    formant_sigma, formant_omega : array [shape=(k,)]
        The upper poles of the formant pairs, labelled F1, F2, ... in order.
    """
    sg, om = np.asarray(sigma, dtype=float), np.asarray(omega, dtype=float)
    hz = om / (2.0 * math.pi)
    data = [go.Scatter(
        x=_clean(sg), y=_clean(hz), mode="markers", name="poles", marker=_POLE,
        customdata=_clean(np.column_stack([-sg / math.pi, om])),
        hovertemplate="σ = %{x:.1f} 1/s, ω = %{customdata[1]:.0f} rad/s<br>"
        "F = %{y:.0f} Hz, B = %{customdata[0]:.0f} Hz<extra>pole</extra>")]
    fs, fo = np.asarray(formant_sigma, dtype=float), np.asarray(formant_omega, dtype=float)
    if fs.size:
        data.append(go.Scatter(x=_clean(fs), y=_clean(fo / (2 * math.pi)), mode="text",
                               text=[f"F{i + 1}" for i in range(fs.size)],
                               textposition="middle left", name="formants", hoverinfo="skip"))
    # zoom on the resonances; broad poles (near z = 0) far to the left stay reachable by zooming out
    finite = sg[np.isfinite(sg)]
    near = np.abs(finite[np.abs(finite) < 2 * math.pi * 2000])
    xmin = -1.15 * max(float(near.max()) if near.size else 0.0, 500.0)
    xmax = max(0.08 * -xmin, 1.1 * float(np.max(finite, initial=0.0)))
    hidden = int(np.count_nonzero(finite < xmin))
    xtitle = "σ = Re s (1/s)" + (f"; {hidden} broad poles further left" if hidden else "")
    shapes = [dict(type="rect", x0=xmin, x1=0, y0=0, y1=1, yref="paper", fillcolor="#2ca02c",
                   opacity=0.06, line=dict(width=0), layer="below"),
              dict(type="line", x0=0, x1=0, y0=0, y1=1, yref="paper",
                   line=dict(color="#888", width=1))]
    notes = [dict(x=xmin, y=0, xref="x", yref="paper", text="stable half-plane (σ < 0)",
                  showarrow=False, xanchor="left", yanchor="bottom", font=dict(size=11))]
    return _figure(data, title, height=420, showlegend=False, shapes=shapes, annotations=notes,
                   xaxis=_axis(xtitle, range=[xmin, xmax]), yaxis=_axis("Im s / 2π (Hz)"))


def responses_figure(
    t_s: ArrayLike,
    impulse: ArrayLike,
    step: ArrayLike,
    *,
    n_t_s: ArrayLike | None = None,
    impulse_discrete: ArrayLike | None = None,
    title: str = "Continuous-time impulse and step responses",
) -> go.Figure:
    """Impulse response (top, with the discrete samples) and step response (bottom).

    Parameters
    ----------
    t_s, impulse, step : array [shape=(m,)]
        ``h_c(t)`` and ``∫_0^t h_c``.
    n_t_s, impulse_discrete : array [shape=(k,)], optional
        Sample times ``nT`` and ``h_d[n] / T``: under impulse invariance they lie on ``h_c``.
    """
    t = _clean(t_s)
    data = [go.Scatter(x=t, y=_clean(impulse), mode="lines", name="h_c(t)",
                       line=dict(color="#1f77b4"))]
    if n_t_s is not None and impulse_discrete is not None:
        data.append(go.Scatter(x=_clean(n_t_s), y=_clean(impulse_discrete), mode="markers",
                               name="h_d[n] / T", marker=dict(size=4, color="#d62728")))
    data.append(go.Scatter(x=t, y=_clean(step), mode="lines", name="step response",
                           line=dict(color="#2ca02c"), yaxis="y2"))
    return _figure(data, title, height=480, legend=dict(orientation="h", y=-0.15),
                   xaxis=_axis("time (s)", anchor="y2"),
                   yaxis=_axis("impulse response h_c(t)", domain=[0.55, 1.0]),
                   yaxis2=_axis("step response", domain=[0.0, 0.45]))


def signal_math_figures(result: dict[str, Any]) -> dict[str, go.Figure]:
    """Every signal-math figure from :func:`ser.signal_math.analyze`'s result.

    Returns
    -------
    dict
        Keys ``spectrum``, ``pitch``, ``spectrogram``, ``logmel``, ``pole_zero``,
        ``frequency_response``, ``s_plane``, ``responses``; a section the clip does not allow
        (silence, no voiced frame) is a :func:`message_figure` saying why.
    """
    figs: dict[str, go.Figure] = {}
    fft, f0 = result["fft"], result["f0"]
    peaks = fft.get("peaks", [])
    figs["spectrum"] = spectrum_figure(
        fft["freq_hz"], fft["magnitude_db"],
        peaks_hz=[p["freq_hz"] for p in peaks], peaks_db=[p["magnitude_db"] for p in peaks],
        f0_hz=f0.get("fft_hz"), f0_feature_hz=f0.get("yin_hz"),
        title=f"FFT of the whole clip (N = {fft['n']}, Δf = {fft['resolution_hz']:.3g} Hz)")
    if f0.get("available"):
        figs["pitch"] = pitch_figure(
            f0["times_s"], f0["track_fft_hz"], f0["track_yin_hz"],
            title=f"F0: FFT {f0['fft_hz']:.1f} Hz vs pitch feature (yin) {f0['yin_hz']:.1f} Hz "
            f"(median of voiced frames)")
    else:
        figs["pitch"] = message_figure(f0["message"], title="Fundamental frequency")
    st = result["stft"]
    figs["spectrogram"] = spectrogram_figure(
        st["times_s"], st["freq_hz"], st["power_db"],
        title=f"STFT: Hann {st['n_fft']} samples ({st['window_ms']:g} ms), "
        f"hop {st['hop_length']} ({st['hop_ms']:g} ms)")
    lm = result["logmel"]
    if lm.get("available"):
        figs["logmel"] = logmel_figure(lm["image"], hop_s=lm["hop_length"] / result["sr"])
    else:
        figs["logmel"] = message_figure(lm["message"], title="Log-mel image")
    z, lap = result["z"], result["laplace"]
    if z.get("available"):
        stable = "stable" if z["stable"] else "UNSTABLE"
        figs["pole_zero"] = pole_zero_figure(
            z["poles_re"], z["poles_im"], n_zeros_at_origin=z["n_zeros_at_origin"],
            title=f"z-plane: order {z['order']}, {stable} (max |z| = {z['max_pole_radius']:.4f})")
        figs["frequency_response"] = frequency_response_figure(
            z["freq_hz"], z["response_db"], z["frame_spectrum_db"],
            formants_hz=[f["freq_hz"] for f in lap["formants"]],
            title=f"|H(e^jω)| over the frame at {z['frame_start_s']:.2f} s "
            f"({z['frame_ms']:g} ms, pre-emphasised)")
        form = lap["formants"]
        figs["s_plane"] = s_plane_figure(
            lap["s_re"], lap["s_im"],
            formant_sigma=[-math.pi * f["bandwidth_hz"] for f in form],
            formant_omega=[2 * math.pi * f["freq_hz"] for f in form])
        n_t = np.asarray(lap["n"], dtype=float) / result["sr"]
        figs["responses"] = responses_figure(
            lap["t_s"], lap["impulse"], lap["step"], n_t_s=n_t,
            impulse_discrete=lap["impulse_discrete"])
    else:
        for key, name in (("pole_zero", "z-plane"), ("frequency_response", "Frequency response"),
                          ("s_plane", "s-plane"), ("responses", "Impulse and step responses")):
            figs[key] = message_figure(z["message"], title=name)
    return figs


def history_curves(history: dict, *, title: str = "CNN training curves", folds: bool = True) -> go.Figure:
    """Accuracy (left) and loss (right) per epoch: training solid, validation dashed.

    Parameters
    ----------
    history : dict
        ``metadata["history"]`` of a CNN: lists ``accuracy``, ``val_accuracy``, ``loss``,
        ``val_loss`` (one value per epoch), optionally ``best_epoch`` (1-based, marked) and
        ``folds`` = ``{protocol: [fold history, ...]}`` whose validation curves are drawn faintly.
    folds : bool
        Draw the per-fold validation curves too.
    """
    colors = {"accuracy": "#1f77b4", "loss": "#d62728"}
    data: list = []
    if folds:
        for protocol, runs in (history.get("folds") or {}).items():
            for k, run in enumerate(runs):
                for metric, axes in (("val_accuracy", ("x", "y")), ("val_loss", ("x2", "y2"))):
                    values = run.get(metric) or []
                    data.append(go.Scatter(
                        x=np.arange(1, len(values) + 1), y=_clean(values), mode="lines", xaxis=axes[0],
                        yaxis=axes[1], line=dict(width=1, color="#bbbbbb"), opacity=0.6, showlegend=False,
                        name=f"{protocol} fold {k + 1} {metric}",
                        hovertemplate=f"{protocol} fold {k + 1}: %{{y:.3f}}<extra>{metric}</extra>"))
    for metric, axes in (("accuracy", ("x", "y")), ("loss", ("x2", "y2"))):
        for prefix, dash, label in (("", "solid", "training"), ("val_", "dash", "validation")):
            values = history.get(prefix + metric) or []
            data.append(go.Scatter(x=np.arange(1, len(values) + 1), y=_clean(values), mode="lines+markers",
                                   xaxis=axes[0], yaxis=axes[1], name=f"{label} {metric}",
                                   line=dict(color=colors[metric], dash=dash, width=2), marker=dict(size=4)))
    shapes, notes = [], []
    best = history.get("best_epoch")
    if best:
        for xref in ("x", "x2"):
            shapes.append(dict(type="line", x0=best, x1=best, y0=0, y1=1, xref=xref, yref="paper",
                               line=dict(dash="dot", width=1.5, color="#555")))
        notes.append(dict(x=best, y=1, xref="x", yref="paper", text=f"best epoch {best} (weights kept)",
                          showarrow=False, xanchor="left", yanchor="bottom", font=dict(size=11, color="#555")))
    return _figure(data, title, height=HEIGHT, shapes=shapes, annotations=notes,
                   legend=dict(orientation="h", y=-0.25),
                   xaxis=_axis("epoch", domain=[0.0, 0.45]), yaxis=_axis("accuracy", range=[0, 1]),
                   xaxis2=_axis("epoch", domain=[0.55, 1.0], anchor="y2"),
                   yaxis2=_axis("loss (cross-entropy)", anchor="x2"))


#: One colour per canonical emotion (as in the app's other figures), stable across figures.
EMOTION_COLORS = {
    "neutral": "#7f7f7f", "calm": "#17becf", "happy": "#ffbf00", "sad": "#1f77b4",
    "angry": "#d62728", "fearful": "#9467bd", "disgust": "#2ca02c", "surprised": "#ff7f0e",
    "boredom": "#8c564b",
}


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha:.2f})"


def emotion_timeline_figure(
    starts_s: ArrayLike,
    ends_s: ArrayLike,
    emotions: Sequence[str],
    confidences: ArrayLike,
    *,
    labels: Sequence[str] | None = None,
    duration_s: float | None = None,
    envelope_t: ArrayLike | None = None,
    envelope_min: ArrayLike | None = None,
    envelope_max: ArrayLike | None = None,
    title: str = "Emotion over time",
) -> go.Figure:
    """The waveform (top) and one lane per emotion (bottom) on one time axis: zooming one zooms both.

    Each voiced segment is a bar in its emotion's lane, and the same span is shaded in the
    emotion's colour over the waveform; hovering a bar gives its times and confidence (also its
    marker's opacity). Built in one ``go.Figure(data, layout)`` call with one trace per emotion,
    so an hour of speech (about a thousand segments) stays light.

    Parameters
    ----------
    starts_s, ends_s : array [shape=(n_segments,)]
        Segment bounds in seconds.
    emotions : sequence of str [n_segments]
    confidences : array [shape=(n_segments,)]
        Probability of each segment's emotion.
    labels : sequence of str, optional
        Lanes, top to bottom (default: the emotions present, in order of appearance).
    duration_s : float, optional
        Length of the recording (the x range).
    envelope_t, envelope_min, envelope_max : array [shape=(n_points,)], optional
        Waveform envelope (``ser.timeline.envelope``); without it only the lanes are drawn.
    """
    starts = np.asarray(starts_s, dtype=float)
    ends = np.asarray(ends_s, dtype=float)
    conf = np.asarray(confidences, dtype=float)
    emotions = [str(e) for e in emotions]
    lanes = list(labels) if labels is not None else list(dict.fromkeys(emotions))
    has_wave = envelope_t is not None and len(envelope_t) > 0
    end = float(duration_s) if duration_s else float(ends.max() if len(ends) else 1.0)
    data: list = []
    lo = hi = 1.0
    if has_wave:
        t, lo_v, hi_v = _clean(envelope_t), _clean(envelope_min), _clean(envelope_max)
        lo = float(np.nanmin(np.asarray(envelope_min, dtype=float))) if len(envelope_min) else -1.0
        hi = float(np.nanmax(np.asarray(envelope_max, dtype=float))) if len(envelope_max) else 1.0
        lo, hi = min(lo, -1e-3), max(hi, 1e-3)
        data.append(go.Scatter(x=t, y=hi_v, mode="lines", line=dict(width=0.5, color="#666"), xaxis="x",
                               yaxis="y", showlegend=False, hoverinfo="skip", name="waveform max"))
        data.append(go.Scatter(x=t, y=lo_v, mode="lines", line=dict(width=0.5, color="#666"), fill="tonexty",
                               fillcolor="rgba(102,102,102,0.55)", xaxis="x", yaxis="y", showlegend=False,
                               hoverinfo="skip", name="waveform"))
    for lab in lanes:
        idx = [i for i, e in enumerate(emotions) if e == lab]
        color = EMOTION_COLORS.get(lab, "#636efa")
        if has_wave and idx:
            xs: list = []
            ys: list = []
            for i in idx:
                xs += [starts[i], ends[i], ends[i], starts[i], starts[i], None]
                ys += [lo, lo, hi, hi, lo, None]
            data.append(go.Scatter(x=xs, y=ys, mode="lines", fill="toself", fillcolor=_rgba(color, 0.22),
                                   line=dict(width=0), xaxis="x", yaxis="y", showlegend=False,
                                   hoverinfo="skip", name=f"{lab} (waveform)", legendgroup=lab))
        bx: list = []
        by: list = []
        for i in idx:
            bx += [starts[i], ends[i], None]
            by += [lab, lab, None]
        data.append(go.Scatter(x=bx, y=by, mode="lines", line=dict(width=14, color=color), xaxis="x",
                               yaxis="y2", name=lab, legendgroup=lab, hoverinfo="skip",
                               showlegend=bool(idx)))
        data.append(go.Scatter(
            x=[(starts[i] + ends[i]) / 2 for i in idx], y=[lab] * len(idx), mode="markers", xaxis="x",
            yaxis="y2", showlegend=False, legendgroup=lab, name=lab,
            marker=dict(size=9, color=color, opacity=[float(np.clip(conf[i], 0.15, 1.0)) for i in idx],
                        line=dict(width=1, color="#222")),
            customdata=[[starts[i], ends[i], conf[i]] for i in idx],
            hovertemplate=f"{lab}<br>%{{customdata[0]:.2f}}–%{{customdata[1]:.2f}} s"
                          "<br>confidence %{customdata[2]:.0%}<extra></extra>"))
    lane_top = 0.56 if has_wave else 1.0
    layout: dict[str, Any] = dict(
        xaxis=_axis("time (s)", range=[0, end], anchor="y2"),
        yaxis2=_axis("", domain=[0.0, lane_top - 0.04 if has_wave else 1.0], type="category",
                     categoryorder="array", categoryarray=list(reversed(lanes)), anchor="x"),
        legend=dict(orientation="h", y=-0.18), hovermode="closest",
    )
    if has_wave:
        layout["yaxis"] = _axis("amplitude", domain=[lane_top, 1.0], range=[lo * 1.05, hi * 1.05], anchor="x",
                                zeroline=False)
    else:
        layout["yaxis"] = dict(visible=False, domain=[0.99, 1.0])
    height = 260 + 22 * len(lanes) + (170 if has_wave else 0)
    return _figure(data, title, height=height, **layout)


# -- issue 8: robustness, calibration, explanations ---------------------------------------------
__all__ += ["robustness_figure", "reliability_figure", "attribution_figure", "occlusion_figure"]


def robustness_figure(
    conditions: Sequence[str],
    accuracy: dict[str, ArrayLike],
    *,
    chance: float | None = None,
    title: str = "Accuracy under degraded audio (speaker-independent)",
) -> go.Figure:
    """Grouped bars: accuracy (%) per test condition, one bar per model.

    Parameters
    ----------
    conditions : sequence of str [shape=(n,)]
        Condition names (``clean``, ``white10dB``, ``telephone``, ...), in display order.
    accuracy : dict of str -> array [shape=(n,)]
        Accuracy in ``[0, 1]`` per condition, for each model (``{"standard": [...], "robust": [...]}``),
        e.g. from ``reports/robustness.json``: ``[results[m][c]["accuracy"] for c in conditions]``.
    chance : float, optional
        Drawn as a dotted line (``1 / n_emotions``).
    """
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"]
    data = [go.Bar(x=list(conditions), y=_clean(100 * np.asarray(acc, dtype=float)), name=name,
                   marker_color=colors[i % len(colors)],
                   hovertemplate="%{x}: %{y:.1f} %<extra>" + name + "</extra>")
            for i, (name, acc) in enumerate(accuracy.items())]
    shapes, notes = [], []
    if chance is not None:
        shapes.append(dict(type="line", x0=0, x1=1, xref="paper", y0=100 * chance, y1=100 * chance,
                           line=dict(dash="dot", width=1.5, color="#777")))
        notes.append(dict(x=1, xref="paper", y=100 * chance, text="chance", showarrow=False,
                          xanchor="right", yanchor="bottom", font=dict(size=11, color="#777")))
    return _figure(data, title, barmode="group", shapes=shapes, annotations=notes,
                   legend=dict(orientation="h", y=-0.35), xaxis=_axis("test condition", tickangle=-35),
                   yaxis=_axis("accuracy %", range=[0, 100]))


def reliability_figure(
    before: Sequence[dict],
    after: Sequence[dict] | None = None,
    *,
    ece_before: float | None = None,
    ece_after: float | None = None,
    title: str = "Reliability diagram",
) -> go.Figure:
    """Accuracy against confidence per bin (:func:`ser.calibration.reliability_diagram` rows).

    A calibrated model lies on the diagonal; points below it are over-confident. Marker size
    follows the number of predictions in the bin.

    Parameters
    ----------
    before, after : list of dict
        Rows with ``confidence``, ``accuracy``, ``count`` (empty bins are skipped); ``after`` is
        the temperature-scaled model.
    ece_before, ece_after : float, optional
        Shown in the legend.
    """
    data = [go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                       line=dict(dash="dot", color="#999", width=1))]
    for rows, name, ece, color in ((before, "raw", ece_before, "#d62728"),
                                   (after, "calibrated", ece_after, "#1f77b4")):
        if not rows:
            continue
        rows = [r for r in rows if r.get("count")]
        total = sum(r["count"] for r in rows) or 1
        label = f"{name} (ECE {ece:.3f})" if ece is not None else name
        data.append(go.Scatter(
            x=[r["confidence"] for r in rows], y=[r["accuracy"] for r in rows], mode="lines+markers", name=label,
            line=dict(color=color, width=2),
            marker=dict(size=[6 + 24 * np.sqrt(r["count"] / total) for r in rows], color=color),
            customdata=[r["count"] for r in rows],
            hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<br>%{customdata} clips<extra>" + name + "</extra>"))
    return _figure(data, title, height=400, legend=dict(orientation="h", y=-0.2),
                   # square, and the plot area shrinks to keep [0, 1] (not the axis range to fill the width)
                   xaxis=_axis("confidence (top probability)", range=[0, 1], constrain="domain"),
                   yaxis=_axis("accuracy", range=[0, 1], scaleanchor="x", constrain="domain"))


def attribution_figure(
    attributions: dict[str, float],
    *,
    target: str = "",
    names: dict[str, str] | None = None,
    baseline: float | None = None,
    probability: float | None = None,
    title: str | None = None,
) -> go.Figure:
    """Horizontal bars: how much each feature family pushed the prediction (MLP).

    Parameters
    ----------
    attributions : dict of str -> float
        Family → change in the predicted emotion's probability (:func:`ser.explain.feature_attribution`);
        positive (green) pushed towards ``target``, negative (red) away from it.
    names : dict of str -> str, optional
        Readable family names.
    baseline, probability : float, optional
        Probability with every family at the training mean, and for this clip (in the subtitle).
    """
    items = sorted(attributions.items(), key=lambda kv: kv[1])
    labels = [(names or {}).get(k, k) for k, _ in items]
    values = np.array([v for _, v in items], dtype=float)
    data = [go.Bar(x=_clean(100 * values), y=labels, orientation="h",
                   marker_color=["#2ca02c" if v >= 0 else "#d62728" for v in values],
                   hovertemplate="%{y}: %{x:+.1f} points<extra></extra>")]
    if title is None:
        title = f"Why {target}?" if target else "Feature-family attribution"
        if baseline is not None and probability is not None:
            title += f" ({100 * baseline:.0f} % at the average voice → {100 * probability:.0f} % for this clip)"
    return _figure(data, title, height=max(260, 60 + 32 * len(items)), margin=dict(l=220, r=20, t=60, b=50),
                   xaxis=_axis(f"change in P({target or 'predicted'}) (percentage points)"),
                   yaxis=dict(automargin=True))


def occlusion_figure(
    image: ArrayLike,
    saliency: ArrayLike,
    *,
    hop_s: float,
    target: str = "",
    title: str | None = None,
) -> go.Figure:
    """The CNN's log-mel image with its occlusion saliency on top (:func:`ser.explain.occlusion_map`).

    Parameters
    ----------
    image, saliency : array [shape=(n_mels, n_frames)]
        Log-mel values in ``[-1, 1]`` and the probability drop when each region is covered.
    hop_s : float
        Seconds between frames.
    """
    img = np.asarray(image, dtype=float)
    sal = np.asarray(saliency, dtype=float)
    top = float(np.nanmax(np.abs(sal))) or 1.0
    x = np.arange(img.shape[1]) * hop_s
    data = [go.Heatmap(z=_clean(img), x=x, y=np.arange(img.shape[0]), colorscale="Greys", reversescale=True,
                       showscale=False, hoverinfo="skip"),
            go.Heatmap(z=_clean(sal), x=x, y=np.arange(img.shape[0]), colorscale="RdBu", reversescale=True,
                       zmin=-top, zmax=top, opacity=0.55,
                       colorbar=dict(title=dict(text=f"drop of P({target})" if target else "probability drop")),
                       hovertemplate="t %{x:.2f} s, band %{y}: %{z:+.3f}<extra></extra>")]
    return _figure(data, title or f"Where the CNN heard {target or 'its answer'} (occlusion)",
                   xaxis=_axis("time (s)"), yaxis=_axis("mel band"))


# -- a prediction and a training run's evaluation -----------------------------------------------

def probabilities_bar(probabilities: Mapping[str, float], *, threshold: float | None = None,
                      title: str = "Probability of each emotion") -> go.Figure:
    """Horizontal bars of ``{emotion: p}`` in the given order; the top one outlined.

    Parameters
    ----------
    probabilities : mapping of str -> float
    threshold : float, optional
        A dashed line where a top probability stops counting as certain.
    """
    labels = list(probabilities)
    values = np.array([float(probabilities[k]) for k in labels])
    top = int(values.argmax()) if len(values) else -1
    bar = go.Bar(x=values, y=labels, orientation="h", text=[f"{v:.0%}" for v in values], textposition="outside",
                 marker=dict(color=[EMOTION_COLORS.get(k, "#636efa") for k in labels],
                             line=dict(width=[3 if i == top else 0 for i in range(len(labels))], color="#222")),
                 hovertemplate="%{y}: %{x:.3f}<extra></extra>")
    shapes, notes = [], []
    if threshold is not None:
        line, note = _vline(threshold, f"uncertain below {threshold:.0%}", dash="dash")
        shapes, notes = [line], [note]
    return _figure([bar], title, height=340, shapes=shapes, annotations=notes,
                   xaxis=_axis("probability", range=[0, 1.08], tickformat=".0%"),
                   yaxis=dict(autorange="reversed"))


def confusion_matrix(confusion: Sequence[Sequence[int]], labels: Sequence[str], *,
                     title: str = "Confusion matrix") -> go.Figure:
    """Counts (true emotion down, predicted across), coloured by the share of each true row."""
    cm = np.asarray(confusion, dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    heat = go.Heatmap(z=share, x=list(labels), y=list(labels), colorscale="Blues", zmin=0, zmax=1,
                      text=cm.astype(int), texttemplate="%{text}",
                      colorbar=dict(title=dict(text="row share"), tickformat=".0%"),
                      hovertemplate="true %{y}, predicted %{x}: %{text} (%{z:.0%})<extra></extra>")
    return _figure([heat], title, height=420, xaxis=dict(title=dict(text="predicted"), side="bottom"),
                   yaxis=dict(title=dict(text="true"), autorange="reversed"))


def importance_bar(importance: Mapping[str, float], *,
                   title: str = "Feature families: accuracy drop when permuted") -> go.Figure:
    """Permutation importance per feature family, largest first."""
    items = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)
    bar = go.Bar(x=[v for _, v in items], y=[k for k, _ in items], orientation="h", marker_color="#1f77b4",
                 hovertemplate="%{y}: %{x:+.3f}<extra></extra>")
    return _figure([bar], title, height=max(240, 40 + 26 * len(items)), xaxis=_axis("accuracy drop"),
                   yaxis=dict(autorange="reversed"))


__all__ += ["enrolment_curve"]


def enrolment_curve(
    ks: Sequence[int],
    uar: Mapping[str, ArrayLike],
    *,
    std: Mapping[str, ArrayLike] | None = None,
    unadapted: Mapping[str, float] | None = None,
    chance: Mapping[str, float] | None = None,
    title: str = "Adapting to a voice: UAR against enrolment clips",
) -> go.Figure:
    """UAR (%) against the number of enrolment clips ``k`` of the speaker, one line per test.

    Parameters
    ----------
    ks : sequence of int [shape=(n,)]
        Enrolment sizes, increasing (``0``: no enrolment, the unadapted model).
    uar : dict of str -> array [shape=(n,)]
        UAR in ``[0, 1]`` at each ``k`` per series (``{"RAVDESS": [...], "RAVDESS → TESS": [...]}``);
        ``NaN`` where not measured.
    std : dict of str -> array [shape=(n,)], optional
        Spread over draws, drawn as error bars.
    unadapted : dict of str -> float, optional
        Each series' unadapted UAR, drawn as a dashed line in its colour.
    chance : dict of str -> float, optional
        Each series' chance UAR (``1 / n_emotions``), drawn dotted and grey.
    """
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"]
    ks = [int(k) for k in ks]
    data, shapes, notes = [], [], []
    for i, (name, values) in enumerate(uar.items()):
        color = colors[i % len(colors)]
        err = None
        if std and name in std:
            err = dict(type="data", array=_clean(100 * np.asarray(std[name], dtype=float)), visible=True)
        data.append(go.Scatter(x=ks, y=_clean(100 * np.asarray(values, dtype=float)), mode="lines+markers",
                               name=name, line=dict(color=color, width=2), error_y=err,
                               hovertemplate="k = %{x}: %{y:.1f} %<extra>" + name + "</extra>"))
        for value, dash, text, line_color in (((unadapted or {}).get(name), "dash", "unadapted", color),
                                              ((chance or {}).get(name), "dot", "chance", "#999")):
            if value is None:
                continue
            shapes.append(dict(type="line", x0=0, x1=1, xref="paper", y0=100 * value, y1=100 * value,
                               line=dict(dash=dash, width=1.2, color=line_color)))
            notes.append(dict(x=1, xref="paper", y=100 * value, text=f"{name} {text}", showarrow=False,
                              xanchor="right", yanchor="bottom", font=dict(size=10, color=line_color)))
    return _figure(data, title, shapes=shapes, annotations=notes, legend=dict(orientation="h", y=-0.25),
                   xaxis=_axis("enrolment clips of the speaker (k)", tickmode="array", tickvals=ks),
                   yaxis=_axis("UAR %", range=[0, 100]))
