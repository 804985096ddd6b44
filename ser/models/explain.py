"""Why did the model say that? Explanations of one prediction.

MLP — feature-family attribution (:func:`feature_attribution`)
    The features of a clip fall into families (MFCC, their deltas, chroma, mel, contrast, ZCR,
    RMS, pitch; :func:`ser.features.feature_groups`). A family is "removed" by replacing its
    columns with the training mean, which the model already stores (the pipeline's
    ``StandardScaler.mean_``). The attribution of a family is its exact **Shapley value** over the
    9 families for the predicted emotion's probability: the average, over every order of adding
    families to the all-mean baseline, of the change the family brings. All ``2**9 = 512``
    coalitions go through the network in one batch (a few milliseconds), and the values add up
    exactly: ``sum(attributions) = p(clip) - p(baseline)``. A positive value pushed the decision
    towards the predicted emotion, a negative one away from it. ``method="occlusion"`` gives the
    cheaper leave-one-family-out drop instead.

CNN — occlusion map (:func:`occlusion_map`)
    Patches of the log-mel image are covered one at a time (with the image's mean, or with silence)
    and the drop in the predicted emotion's probability is recorded: a large drop marks a region
    the network relied on. Only the recognizer's own methods are called, so this module imports
    no TensorFlow.

:func:`explain` dispatches on the recognizer and returns plain values (for the app and the API).
"""

from __future__ import annotations

import time
from math import factorial
from typing import Any

import numpy as np

from .. import plots
from ..cluster import one_blas_thread
from ..errors import AudioError
from ..features.handcrafted import feature_groups
from .registry import get_recognizer

__all__ = ["feature_attribution", "occlusion_map", "explain", "explain_audio", "explanation_figure", "to_api",
           "FAMILY_NAMES"]

#: Readable names of the feature families.
FAMILY_NAMES = {
    "mfcc": "MFCC (timbre / vocal tract)", "mfcc_delta": "MFCC deltas (how timbre changes)",
    "mfcc_delta2": "MFCC accelerations", "chroma": "chroma (pitch class)", "mel": "mel spectrum (energy per band)",
    "zcr": "zero-crossing rate (noisiness)", "contrast": "spectral contrast (peaks vs valleys)",
    "rms": "loudness (RMS)", "pitch": "pitch (F0 level, range, voicing)",
}
MAX_SHAPLEY_GROUPS = 14  # 2**14 = 16384 coalitions in one batch at most


def _baseline(recognizer) -> np.ndarray:
    scaler = recognizer.pipeline.named_steps.get("scaler") if hasattr(recognizer.pipeline, "named_steps") else None
    if scaler is None or not hasattr(scaler, "mean_"):
        raise ValueError("Feature attribution needs a fitted pipeline with a 'scaler' step holding mean_.")
    return np.asarray(scaler.mean_, dtype=np.float64)


def _coalition_proba(recognizer, x: np.ndarray, base: np.ndarray, cols: list[np.ndarray],
                     masks: np.ndarray) -> np.ndarray:
    """Probabilities ``[n_masks, n_labels]`` of the inputs that keep ``x`` on the families a mask
    selects and ``base`` elsewhere.

    For ``Pipeline(StandardScaler, MLPClassifier)`` the first layer is linear, so each family's
    contribution to it is computed once and the coalitions combine them (``masks @ G``): exact, and
    about half the work of pushing every coalition through the whole network. Any other model gets
    the rows themselves.
    """
    fast = _first_layer_shortcut(recognizer)
    if fast is None:
        rows = np.repeat(base[None, :], len(masks), axis=0)
        for j, c in enumerate(cols):
            rows[np.ix_(masks[:, j], c)] = x[c]
        return np.asarray(recognizer.proba_from_features(rows), dtype=np.float64)
    scaler, mlp = fast
    xs = (x - scaler.mean_) / scaler.scale_
    bs = (base - scaler.mean_) / scaler.scale_
    w1 = mlp.coefs_[0]
    contrib = np.stack([(xs[c] - bs[c]) @ w1[c] for c in cols])  # [n_groups, n_hidden]
    z = masks.astype(np.float64) @ contrib + (bs @ w1 + mlp.intercepts_[0])
    acts = {"relu": lambda a: np.maximum(a, 0), "tanh": np.tanh, "logistic": lambda a: 1 / (1 + np.exp(-a)),
            "identity": lambda a: a}
    act = acts[mlp.activation]
    for w, b in zip(mlp.coefs_[1:], mlp.intercepts_[1:]):
        z = act(z) @ w + b
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return recognizer.calibrated(p[:, recognizer._columns])


def _first_layer_shortcut(recognizer):
    """``(scaler, mlp)`` when the recognizer is exactly scaler → multi-class MLP, else None."""
    steps = getattr(getattr(recognizer, "pipeline", None), "steps", None)
    if not steps or len(steps) != 2 or not hasattr(recognizer, "_columns"):
        return None
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    scaler, mlp = steps[0][1], steps[1][1]
    if not (isinstance(scaler, StandardScaler) and isinstance(mlp, MLPClassifier)):
        return None
    if mlp.out_activation_ != "softmax" or scaler.scale_ is None or mlp.activation not in (
            "relu", "tanh", "logistic", "identity"):
        return None
    return scaler, mlp


def feature_attribution(
    recognizer,
    x: np.ndarray,
    *,
    groups: dict[str, np.ndarray] | None = None,
    method: str = "shapley",
    target: str | None = None,
) -> dict[str, Any]:
    """Attribution of one prediction to feature families (MLP).

    Parameters
    ----------
    recognizer : MLPRecognizer
        Anything with ``pipeline`` (``StandardScaler`` → classifier), ``labels`` and
        ``proba_from_features(X [n, n_features]) -> [n, len(labels)]``.
    x : np.ndarray [shape=(n_features,)]
        The clip's features (``recognizer.features_of(y)``).
    groups : dict of str -> column indices, optional
        Default :func:`ser.features.feature_groups` of the recognizer's feature settings.
    method : {"shapley", "occlusion"}
    target : str, optional
        Emotion to explain; default the predicted one.

    Returns
    -------
    dict
        ``target``, ``probability`` (of ``target`` for this clip), ``baseline_probability``
        (all families at the training mean), ``attributions`` ({family: value}, largest first),
        ``by_class`` ({emotion: {family: value}}), ``method``, ``names`` (readable family names),
        ``elapsed_ms``. For Shapley, each emotion's values sum to ``probability - baseline_probability``.
    """
    started = time.perf_counter()
    if method not in ("shapley", "occlusion"):
        raise ValueError(f"Unknown method {method!r}; expected 'shapley' or 'occlusion'.")
    if groups is None:
        groups = feature_groups(recognizer.features)
    names = list(groups)
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    base = _baseline(recognizer)
    if x.shape != base.shape:
        raise ValueError(f"x has {x.shape[0]} features, the model expects {base.shape[0]}.")
    g = len(names)
    if method == "shapley":
        if g > MAX_SHAPLEY_GROUPS:
            raise ValueError(f"Exact Shapley over {g} groups is too costly (at most {MAX_SHAPLEY_GROUPS}); "
                             "use method='occlusion'.")
        masks = ((np.arange(2**g)[:, None] >> np.arange(g)) & 1).astype(bool)  # [2**g, g]: family kept?
    else:  # all kept, then each family removed in turn, then none kept
        masks = np.vstack([np.ones((1, g), bool), ~np.eye(g, dtype=bool), np.zeros((1, g), bool)])
    values = _coalition_proba(recognizer, x, base, [np.asarray(groups[n]) for n in names], masks)
    labels = list(recognizer.labels)
    if method == "shapley":
        full, empty = values[-1], values[0]  # mask 2**g - 1 keeps every family; mask 0 none
        size = masks.sum(axis=1)
        weight = np.array([factorial(s) * factorial(g - s - 1) / factorial(g) for s in range(g)])
        phi = np.zeros((g, len(labels)))
        codes = np.arange(2**g)
        for j in range(g):
            without = codes[~masks[:, j]]
            phi[j] = (weight[size[without]][:, None] * (values[without | (1 << j)] - values[without])).sum(axis=0)
    else:
        full, empty = values[0], values[-1]
        phi = full[None, :] - values[1:1 + g]
    t = int(np.argmax(full)) if target is None else labels.index(target)
    order = np.argsort(-phi[:, t])
    return {
        "target": labels[t],
        "probability": float(full[t]),
        "baseline_probability": float(empty[t]),
        "attributions": {names[j]: float(phi[j, t]) for j in order},
        "by_class": {lab: {names[j]: float(phi[j, k]) for j in range(g)} for k, lab in enumerate(labels)},
        "method": method,
        "names": {n: FAMILY_NAMES.get(n, n) for n in names},
        "elapsed_ms": round(1000 * (time.perf_counter() - started), 2),
    }


def occlusion_map(
    recognizer,
    y: np.ndarray,
    *,
    patch: tuple[int, int] = (16, 16),
    fill: str = "mean",
    target: str | None = None,
) -> dict[str, Any]:
    """Occlusion saliency over the log-mel image(s) of one clip (CNN).

    Parameters
    ----------
    recognizer : CNNRecognizer
        Anything with ``labels``, ``windows(y) -> [n_windows, n_mels, n_frames]`` and
        ``proba_from_windows(X) -> [len(labels)]``.
    y : np.ndarray [shape=(n,)]
        The loaded clip.
    patch : (int, int)
        Mel bands × frames covered at a time (non-overlapping grid).
    fill : {"mean", "silence"}
        Covered cells take the window's mean value, or the image floor (silence).
    target : str, optional
        Emotion to explain; default the predicted one.

    Returns
    -------
    dict
        ``image`` [n_mels, n_windows * n_frames] (windows side by side), ``saliency`` (same shape:
        drop of the target's probability when the cell's patch is covered; may be negative),
        ``grid`` [n_windows, n_mels // ph, n_frames // pw], ``target``, ``probability``, ``patch``,
        ``fill``, ``elapsed_ms``.
    """
    started = time.perf_counter()
    if fill not in ("mean", "silence"):
        raise ValueError(f"Unknown fill {fill!r}; expected 'mean' or 'silence'.")
    X = np.asarray(recognizer.windows(y), dtype=np.float32)
    n_w, n_m, n_t = X.shape
    ph, pw = int(patch[0]), int(patch[1])
    if not (0 < ph <= n_m and 0 < pw <= n_t):
        raise ValueError(f"patch {patch} must fit the {n_m}x{n_t} image.")
    labels = list(recognizer.labels)
    p0 = np.asarray(recognizer.proba_from_windows(X), dtype=np.float64)
    t = int(np.argmax(p0)) if target is None else labels.index(target)
    grid = np.zeros((n_w, -(-n_m // ph), -(-n_t // pw)))
    for w in range(n_w):
        value = float(X[w].mean()) if fill == "mean" else float(X.min())
        for i in range(grid.shape[1]):
            for j in range(grid.shape[2]):
                Xo = X.copy()
                Xo[w, i * ph:(i + 1) * ph, j * pw:(j + 1) * pw] = value
                grid[w, i, j] = p0[t] - float(np.asarray(recognizer.proba_from_windows(Xo))[t])
    saliency = np.repeat(np.repeat(grid, ph, axis=1), pw, axis=2)[:, :n_m, :n_t]
    return {
        "image": np.concatenate(list(X), axis=1),
        "saliency": np.concatenate(list(saliency), axis=1),
        "grid": grid,
        "target": labels[t],
        "probability": float(p0[t]),
        "patch": [ph, pw],
        "fill": fill,
        "elapsed_ms": round(1000 * (time.perf_counter() - started), 1),
    }


def explain(recognizer, y: np.ndarray, **kwargs) -> dict[str, Any]:
    """Explain one loaded clip with whatever the recognizer supports.

    MLP: :func:`feature_attribution` (``kind="features"``); CNN: :func:`occlusion_map`
    (``kind="occlusion"``); ensemble: ``{"kind": "ensemble", "members": {name: explanation}}``.
    """
    if hasattr(recognizer, "pipeline"):
        return {"kind": "features", **feature_attribution(recognizer, recognizer.features_of(y), **kwargs)}
    if hasattr(recognizer, "proba_from_windows"):
        return {"kind": "occlusion", **occlusion_map(recognizer, y, **kwargs)}
    members = getattr(recognizer, "members", None)
    if members:
        return {"kind": "ensemble", "members": {name: explain(m, y) for name, m in members.items()}}
    raise ValueError(f"No explanation for a {type(recognizer).__name__}.")


def to_api(explanation: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready copy: arrays become lists; the occlusion map keeps its coarse ``grid`` (one value
    per patch) and drops the full-resolution ``image``/``saliency`` (the figure's business)."""
    out: dict[str, Any] = {}
    for k, v in explanation.items():
        if k in ("image", "saliency"):
            continue
        if k == "members":
            out[k] = {name: to_api(m) for name, m in v.items()}
        elif isinstance(v, np.ndarray):
            out[k] = np.round(v, 5).tolist()
        else:
            out[k] = v
    return out


def explanation_figure(explanation: dict[str, Any], *, hop_s: float = 0.02):
    """The plotly figure of an explanation (:func:`ser.plots.attribution_figure` or
    :func:`ser.plots.occlusion_figure`; an ensemble shows its first explainable member)."""
    kind = explanation.get("kind")
    if kind == "features":
        return plots.attribution_figure(explanation["attributions"], target=explanation["target"],
                                        names=explanation.get("names"),
                                        baseline=explanation.get("baseline_probability"),
                                        probability=explanation.get("probability"))
    if kind == "occlusion":
        return plots.occlusion_figure(explanation["image"], explanation["saliency"], hop_s=hop_s,
                                      target=explanation["target"])
    if kind == "ensemble":
        for name in ("mlp", "cnn", *explanation["members"]):
            if name in explanation["members"]:
                return explanation_figure(explanation["members"][name], hop_s=hop_s)
    return plots.message_figure("Nothing to explain.")


def explain_audio(audio, model: str = "mlp", *, recognizer=None, **kwargs) -> tuple[dict[str, Any], Any]:
    """Explain the prediction of a saved model for any audio source (path, bytes, ``(sr, array)``).

    Returns
    -------
    (explanation, figure)
        :func:`to_api` of :func:`explain`'s result (plain values for the API) and its plotly figure.
    """
    if audio is None:
        raise AudioError("No audio: record or upload a clip first.")
    rec = recognizer if recognizer is not None else get_recognizer(model)  # the app passes its served model
    y = rec.load(audio)
    with one_blas_thread():  # 512 small matrix products: a second BLAS thread only spins (2x slower here)
        result = explain(rec, y, **kwargs)
    hop = getattr(getattr(rec, "spectrogram", None), "hop_length", 320) / rec.audio["sr"]
    return to_api(result), explanation_figure(result, hop_s=hop)
