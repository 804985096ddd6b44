"""Ensemble training: combine the members' out-of-fold results, fit its temperature, train all.

Members are evaluated on the same splits (the protocols are deterministic), each saves its
out-of-fold predictions beside it (``oof_predictions.npz``), so an ensemble of saved members is
evaluated without retraining them; its weights are fixed in advance (equal), so nothing is fitted
on any test fold.
"""

from __future__ import annotations

import logging
import time
from typing import Sequence

import numpy as np

from ..audio.corpora import Clip
from ..errors import ModelError
from ..models.base import OOF_FILE, Recognizer
from ..models.calibration import apply_temperature, expected_calibration_error, fit_temperature
from ..models.ensemble import EnsembleRecognizer
from .cnn import train_cnn
from .metadata import Progress, TrainingReport, audio_settings, data_summary, finish, library_versions
from .mlp import train_mlp
from .protocols import (PROTOCOLS, ProtocolResult, classification_metrics, confused_pairs, describe,
                        robustness_summary, split_condition)
from .smile import train_smile

__all__ = ["MEMBERS", "TRAINERS", "combine_results", "build_ensemble", "results_from_oof",
           "train_all"]

#: The bundled ensemble's members, and how each kind is trained.
MEMBERS = ("mlp", "cnn", "smile")
TRAINERS = {"mlp": train_mlp, "cnn": train_cnn, "smile": train_smile}

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


def build_ensemble(
    members: dict[str, Recognizer],
    member_results: dict[str, dict[str, ProtocolResult]],
    clips: Sequence[Clip],
    *,
    weights: dict[str, float] | None = None,
    calibrate: bool = True,
    data_root: str | None = None,
) -> tuple[EnsembleRecognizer, TrainingReport]:
    """The ensemble of trained members and its metrics under every protocol they share.

    ``calibrate``: fit the ensemble's temperature on its speaker-independent out-of-fold
    probabilities (every clip once, each from models that never heard its speaker) — the training
    clips of the shipped ensemble; the metrics do not change (same arg-max).

    Parameters
    ----------
    members : {name: Recognizer}
    member_results : {name: {protocol: ProtocolResult}}
        The members' out-of-fold results (``report.results`` of their training run).
    weights : {name: weight}, optional
        Equal by default.
    """
    weights = {n: 1.0 for n in members} if weights is None else dict(weights)
    protocols = [p for p in PROTOCOLS if all(p in member_results[n] for n in members)]
    # and the degraded test conditions ("<protocol>@<condition>") every member was tested under
    shared = [p for p in member_results[next(iter(members))] if split_condition(p)[1]
              and split_condition(p)[0] in protocols and all(p in member_results[n] for n in members)]
    results = {p: combine_results({n: member_results[n][p] for n in members}, weights, clips)
               for p in (*protocols, *shared)}
    temperature, calibration = None, None
    si = results.get("speaker_independent")
    if calibrate and si is not None:
        temperature = fit_temperature(si.proba, si.y_true)
        calibration = {
            "method": "temperature scaling of the averaged probabilities", "temperature": temperature,
            "fitted_on": "the ensemble's speaker-independent out-of-fold probabilities of all its training "
                         "clips (the members' raw probabilities; their own temperatures are not applied inside "
                         "the ensemble)",
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
                   "member_probabilities": "raw (members' own temperatures are not applied inside the ensemble)",
                   "members": {n: {"model": m.kind, "version": m.metadata.get("version"),
                                   "params": m.metadata.get("params")} for n, m in members.items()}},
        "preprocessing": {"audio": audio_settings(),
                          **{n: m.metadata.get("preprocessing") for n, m in members.items()}},
        "data": data_summary(clips, data_root),
        "metrics": {p: results[p].metrics for p in protocols},
        "robustness": robustness_summary(results),
        "calibration": calibration,
        "library_versions": library_versions(),
    }
    return finish(EnsembleRecognizer(members, weights=weights, temperature=temperature), metadata, results, clips)


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


def train_all(
    clips: Sequence[Clip],
    *,
    members: Sequence[str] = MEMBERS,
    reuse: dict[str, str] | None = None,
    member_kwargs: dict[str, dict] | None = None,
    seed: int = 0,
    n_jobs: int = -1,
    progress: Progress | None = None,
    data_root: str | None = None,
) -> dict[str, tuple[Recognizer, dict, bool]]:
    """Train and evaluate each member on the same splits (or reuse saved ones), then their ensemble.

    Parameters
    ----------
    members : sequence of str
        Kinds of :data:`TRAINERS`.
    reuse : {kind: model folder}, optional
        Reuse a saved member instead of training it; it must hold the out-of-fold predictions of its
        own training run on these clips (``oof_predictions.npz``, written by every training run).
    member_kwargs : {kind: keyword arguments of its training function}, optional

    Returns
    -------
    ``{kind: (recognizer, results, reused), ..., "ensemble": (recognizer, results, False)}`` where
    ``results`` maps protocol → :class:`ser.training.protocols.ProtocolResult`; nothing is saved.
    ``progress(fraction, message)`` spans the whole run.
    """
    clips = list(clips)
    reuse, member_kwargs = dict(reuse or {}), dict(member_kwargs or {})
    unknown = sorted((set(members) | set(reuse) | set(member_kwargs)) - set(TRAINERS))
    if unknown or not members:
        raise ModelError(f"Unknown ensemble members {unknown or '(none)'}; choose among {', '.join(TRAINERS)}.")
    out: dict[str, tuple[Recognizer, dict, bool]] = {}
    to_train = [m for m in members if m not in reuse]
    for name in members:
        if name in reuse:
            rec = Recognizer.from_pretrained(reuse[name])
            if rec.kind != name:
                raise ModelError(f"{reuse[name]} holds a {rec.kind} model, not {name}.")
            if not rec.oof:
                raise ModelError(f"{reuse[name]} has no out-of-fold predictions ({OOF_FILE}); train the {name} "
                                 "again (every training run saves them).")
            out[name] = (rec, results_from_oof(rec.oof, clips), True)
            continue
        k = to_train.index(name)

        def part(f: float, m: str, _k=k, _n=name) -> None:
            if progress is not None:
                progress((_k + f) / len(to_train), f"{_n}: {m}")

        rec, report = TRAINERS[name](clips, seed=seed, n_jobs=n_jobs, progress=part, data_root=data_root,
                                     **member_kwargs.get(name, {}))
        out[name] = (rec, report.results, False)
    ens, ens_report = build_ensemble({n: out[n][0] for n in members}, {n: out[n][1] for n in members}, clips,
                                     data_root=data_root)
    out["ensemble"] = (ens, ens_report.results, False)
    if progress is not None:
        progress(1.0, "done")
    return out
