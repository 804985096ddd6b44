"""Ensemble training: combine the members' out-of-fold results, fit its temperature, train all."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..audio.corpora import Clip
from ..errors import ModelError
from ..models.base import OOF_FILE, Recognizer
from ..models.calibration import apply_temperature, expected_calibration_error, fit_temperature
from ..models.ensemble import DEFAULT_WEIGHTS, EnsembleRecognizer
from .cnn import oof_of, train_cnn
from .metadata import audio_settings, data_summary, library_versions
from .mlp import train_mlp
from .protocols import PROTOCOLS, ProtocolResult, classification_metrics, confused_pairs, describe

__all__ = ["EnsembleReport", "combine_results", "build_ensemble", "results_from_oof", "train_all"]

log = logging.getLogger(__name__)

def combine_results(
    member_results: dict[str, ProtocolResult], weights: dict[str, float], clips: Sequence[Clip]
) -> ProtocolResult:
    """The ensemble's out-of-fold result: weighted mean of the members' out-of-fold probabilities.

    Members must have tested the same clips (same protocol, same splits); rows are aligned by clip
    index and columns by label name.
    """
    names = list(member_results)
    ref = member_results[names[0]]
    labels = list(ref.labels)
    order = np.argsort(ref.test_index)
    test_index = ref.test_index[order]
    total = float(sum(weights[n] for n in names))
    proba = np.zeros((len(test_index), len(labels)))
    for n in names:
        r = member_results[n]
        if r.protocol != ref.protocol or not np.array_equal(np.sort(r.test_index), test_index):
            raise ModelError(f"Members tested different clips under {ref.protocol}: cannot combine {names}.")
        if sorted(r.labels) != sorted(labels):
            raise ModelError(f"Members have different labels: {r.labels} vs {labels}.")
        cols = [list(r.labels).index(lab) for lab in labels]
        proba += weights[n] / total * r.proba[np.argsort(r.test_index)][:, cols]
    y_true = ref.y_true[order]
    res = ProtocolResult(ref.protocol, labels, test_index, proba, y_true)
    res.metrics = classification_metrics(y_true, res.y_pred, labels)
    res.metrics["protocol"] = describe(ref.protocol, clips)
    res.metrics["folds"] = ref.metrics.get("folds")
    ids = [clips[i].clip_id for i in test_index]
    res.metrics["error_analysis"] = confused_pairs(y_true, res.y_pred, labels, ids)
    members = {n: classification_metrics(r.y_true, r.y_pred, list(r.labels)) for n, r in member_results.items()}
    res.metrics["members"] = {n: {k: m[k] for k in ("accuracy", "uar", "macro_f1")} for n, m in members.items()}
    return res


@dataclass
class EnsembleReport:
    metadata: dict
    results: dict  # protocol -> ProtocolResult


def build_ensemble(
    members: dict[str, Recognizer],
    member_results: dict[str, dict[str, ProtocolResult]],
    clips: Sequence[Clip],
    *,
    weights: dict[str, float] | None = None,
    calibrate: bool = True,
    data_root: str | None = None,
) -> tuple[EnsembleRecognizer, EnsembleReport]:
    """The ensemble of trained members and its metrics under every protocol they share.

    ``calibrate``: fit the ensemble's temperature on its speaker-independent out-of-fold
    probabilities (every clip once, each from models that never heard its speaker) — the training
    clips of the shipped ensemble; the metrics do not change (same arg-max).

    Parameters
    ----------
    members : {"mlp": MLPRecognizer, "cnn": CNNRecognizer}
    member_results : {"mlp": {protocol: ProtocolResult}, "cnn": {...}}
        The members' out-of-fold results (``report.results`` of ``train_mlp`` / ``train_cnn``).
    """
    weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
    protocols = [p for p in PROTOCOLS if all(p in member_results[n] for n in members)]
    results = {p: combine_results({n: member_results[n][p] for n in members}, weights, clips) for p in protocols}
    temperature, calibration = None, None
    si = results.get("speaker_independent")
    if calibrate and si is not None:
        temperature = fit_temperature(si.proba, si.y_true)
        calibration = {
            "method": "temperature scaling of the averaged probabilities", "temperature": temperature,
            "fitted_on": "the ensemble's speaker-independent out-of-fold probabilities of all its training "
                         "clips (members' raw probabilities; MLP temperature undone inside the ensemble)",
            "ece": "top-label expected calibration error, 15 equal-width bins",
            "training_oof": {"ece_before": expected_calibration_error(si.proba, si.y_true),
                             "ece_after_in_sample": expected_calibration_error(
                                 apply_temperature(si.proba, temperature), si.y_true)},
        }
    metadata = {
        "model": "ensemble",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "params": {"weights": weights, "combination": "weighted mean of the members' probabilities",
                   "weights_chosen": "fixed in advance (equal); nothing is fitted on any test fold",
                   "member_probabilities": "raw (an MLP's temperature is undone inside the ensemble)",
                   "members": {n: {"model": m.kind, "version": m.metadata.get("version"),
                                   "params": m.metadata.get("params")} for n, m in members.items()}},
        "preprocessing": {"audio": audio_settings(),
                          **{n: m.metadata.get("preprocessing") for n, m in members.items()}},
        "data": data_summary(clips, data_root),
        "metrics": {p: r.metrics for p, r in results.items()},
        "calibration": calibration,
        "library_versions": library_versions(),
    }
    rec = EnsembleRecognizer(members, weights=weights, temperature=temperature, metadata=metadata,
                             oof=oof_of(results, clips))
    return rec, EnsembleReport(metadata, results)


def results_from_oof(oof: dict, clips: Sequence[Clip]) -> dict[str, ProtocolResult]:
    """Saved out-of-fold predictions (``oof_predictions.npz``) as results over ``clips``.

    Raises :class:`ModelError` unless every saved clip id is among ``clips`` (same corpus).
    """
    index = {c.clip_id: i for i, c in enumerate(clips)}
    out = {}
    for protocol, d in oof.items():
        missing = [cid for cid in d["clip_ids"] if cid not in index]
        if missing:
            raise ModelError(f"The saved {protocol} predictions cover clips not in this corpus "
                             f"(e.g. {missing[0]}); train on the same data or retrain the member.")
        labels = list(d["labels"])
        test_index = np.array([index[cid] for cid in d["clip_ids"]])
        y_true = np.array([labels.index(clips[i].emotion) for i in test_index])
        res = ProtocolResult(protocol, labels, test_index, np.asarray(d["proba"], dtype=np.float64), y_true)
        res.metrics = classification_metrics(y_true, res.y_pred, labels)
        out[protocol] = res
    return out


def _mlp_results_again(mlp: Recognizer, clips: Sequence[Clip], *, n_jobs: int, progress) -> dict:
    """Re-run a saved MLP's evaluation (same settings, same splits) for its out-of-fold predictions."""
    params = mlp.metadata.get("params", {})
    search = params.get("search", {})
    _, report = train_mlp(clips, search=bool(search.get("enabled", True)), n_iter=int(search.get("n_iter", 8)),
                          params=params.get("mlp") if not search.get("enabled", True) else None,
                          variants=tuple(params.get("augmentation", ())), seed=int(params.get("seed", 0)),
                          importance=False, n_jobs=n_jobs, progress=progress)
    for protocol, res in report.results.items():
        saved = mlp.metadata.get("metrics", {}).get(protocol, {}).get("accuracy")
        if saved is not None and abs(saved - res.metrics["accuracy"]) > 1e-9:
            log.warning(
                "re-running the MLP's %s evaluation gave accuracy %.4f, its metadata says %.4f",
                protocol, res.metrics["accuracy"], saved)
    return report.results


def train_all(
    clips: Sequence[Clip],
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    n_jobs: int = -1,
    progress=None,
    on_epoch=None,
    data_root: str | None = None,
    mlp_kwargs: dict | None = None,
    cnn_kwargs: dict | None = None,
    mlp_from: str | None = None,
    cnn_from: str | None = None,
) -> dict[str, tuple[Recognizer, object, bool]]:
    """Train and evaluate the MLP and the CNN on the same splits, then their ensemble.

    Parameters
    ----------
    mlp_from, cnn_from : path, optional
        Reuse a saved member instead of training it. A CNN brings its out-of-fold predictions
        (``oof_predictions.npz``); an MLP's are recomputed with the settings in its metadata.

    Returns
    -------
    ``{"mlp": (rec, results, reused), "cnn": (...), "ensemble": (rec, results, False)}`` where
    ``results`` maps protocol → :class:`ser.evaluate.ProtocolResult`; nothing is saved.
    ``progress(fraction, message)`` spans the whole run.
    """
    def part(lo: float, hi: float):
        if progress is None:
            return lambda f, m: None
        return lambda f, m: progress(lo + (hi - lo) * f, m)

    clips = list(clips)
    split = 0.1 if cnn_from is None else 0.9
    if mlp_from is not None:
        mlp = Recognizer.from_pretrained(mlp_from)
        mlp_results = _mlp_results_again(mlp, clips, n_jobs=n_jobs, progress=part(0.0, split))
    else:
        mlp, report = train_mlp(clips, seed=seed, n_jobs=n_jobs, progress=part(0.0, split), data_root=data_root,
                                **(mlp_kwargs or {}))
        mlp_results = report.results
    if cnn_from is not None:
        cnn = Recognizer.from_pretrained(cnn_from)
        if not getattr(cnn, "oof", None):
            raise ModelError(f"{cnn_from} has no out-of-fold predictions ({OOF_FILE}); retrain the CNN here.")
        cnn_results = results_from_oof(cnn.oof, clips)
    else:
        cnn, report = train_cnn(clips, epochs=epochs, batch_size=batch_size, seed=seed, n_jobs=n_jobs,
                                progress=part(split, 1.0), on_epoch=on_epoch, data_root=data_root,
                                **(cnn_kwargs or {}))
        cnn_results = report.results
    ens, ens_report = build_ensemble({"mlp": mlp, "cnn": cnn}, {"mlp": mlp_results, "cnn": cnn_results}, clips,
                                     data_root=data_root)
    if progress is not None:
        progress(1.0, "done")
    return {"mlp": (mlp, mlp_results, mlp_from is not None), "cnn": (cnn, cnn_results, cnn_from is not None),
            "ensemble": (ens, ens_report.results, False)}
