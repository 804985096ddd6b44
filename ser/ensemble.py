"""The MLP + CNN ensemble: a weighted mean of the members' probabilities.

Weights: equal (``mlp 0.5, cnn 0.5``). Nothing is chosen from data, so nothing can leak from a
test fold; a learned weight would need out-of-fold predictions *inside* every training side
(seven more CNN trainings per protocol), which the 2-core budget does not allow.

The members' *raw* probabilities are averaged (an MLP's own temperature is undone inside the
ensemble), because those are what the out-of-fold evaluation measured. The ensemble then has
its own temperature (:mod:`ser.calibration`), fitted like the MLP's on out-of-fold predictions of
its training clips (the speaker-independent ones): it moves confidences, never the arg-max, so
the metrics are those of the raw average.

Evaluation uses the members' own out-of-fold predictions from the *same* splits
(:func:`ser.evaluate.protocol_splits` is deterministic): the ensemble's probability for a clip
is the weighted mean of the MLP's and the CNN's probabilities for that clip, each from a model
that never saw it (nor, speaker-independently, its speaker).

The saved folder is self-contained, so it can be pushed to the Hub alone::

    config.json        {"model_type": "ensemble", "weights": {"mlp": 0.5, "cnn": 0.5}, "temperature",
                        "labels", "audio"}
    mlp/, cnn/         the members' version folders (their own metadata and sha256), without the
                       seed-compatible pickles / HDF5, which ser never loads
    oof_predictions.npz  the ensemble's out-of-fold probabilities (when trained here)
    metadata.json, README.md
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from . import artifacts
from .corpora import Clip
from .errors import ModelError
from .evaluate import PROTOCOLS, ProtocolResult, classification_metrics, confused_pairs, describe
from .recognizer import Recognizer

__all__ = ["DEFAULT_WEIGHTS", "EnsembleRecognizer", "EnsembleReport", "combine_results", "build_ensemble",
           "results_from_oof", "train_all"]

DEFAULT_WEIGHTS = {"mlp": 0.5, "cnn": 0.5}
OOF_FILE = "oof_predictions.npz"


class EnsembleRecognizer(Recognizer):
    """Weighted mean of member recognizers' probabilities, aligned by label name."""

    kind = "ensemble"

    def __init__(self, members: dict[str, Recognizer], *, weights: dict[str, float] | None = None,
                 temperature: float | None = None, labels=None, audio=None, metadata=None,
                 oof: dict | None = None):
        if not members:
            raise ModelError("An ensemble needs at least one member.")
        weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
        if set(weights) != set(members):
            raise ModelError(f"Weights {sorted(weights)} do not match members {sorted(members)}.")
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ModelError(f"Weights must be non-negative and not all zero, got {weights}.")
        first = next(iter(members.values()))
        labels = list(first.labels) if labels is None else labels
        for name, m in members.items():
            if sorted(m.labels) != sorted(labels):
                raise ModelError(f"Member {name} predicts {m.labels}, the ensemble {list(labels)}.")
            if m.audio != first.audio:
                raise ModelError(f"Members load audio differently ({name}: {m.audio} vs {first.audio}); "
                                 "an ensemble needs one audio setting.")
        super().__init__(labels=labels, audio=first.audio if audio is None else audio, metadata=metadata,
                         temperature=temperature)
        total = float(sum(weights.values()))
        self.weights = {k: float(v) / total for k, v in weights.items()}
        self.members = dict(members)
        self._columns = {name: [m.labels.index(lab) for lab in self.labels] for name, m in members.items()}
        self.oof = oof

    def member_proba(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """Each member's raw probabilities ``[len(labels)]`` (in this ensemble's label order).

        A member's own temperature is undone (``softmax(T log p_T) = p``): the ensemble averages
        what its evaluation averaged.
        """
        from .calibration import apply_temperature

        out = {}
        for name, m in self.members.items():
            p = np.asarray(m.predict_proba(y), dtype=np.float64)
            if m.temperature is not None:
                p = apply_temperature(p, 1.0 / m.temperature)
            out[name] = p[self._columns[name]]
        return out

    def predict_proba(self, y: np.ndarray) -> np.ndarray:
        parts = self.member_proba(y)
        return self.calibrated(sum(self.weights[name] * q for name, q in parts.items()))

    def config(self) -> dict:
        return {**super().config(), "weights": self.weights, "members": {k: k for k in self.members}}

    def _write(self, folder: Path) -> None:
        for name, member in self.members.items():
            _copy_member(member, folder / name)
        if self.oof:
            from .cnn import save_oof

            save_oof(folder / OOF_FILE, self.oof)

    @classmethod
    def _read(cls, folder: Path, config: dict, metadata: dict) -> "EnsembleRecognizer":
        weights = config.get("weights") or {}
        members = {}
        for name in weights:
            sub = folder / config.get("members", {}).get(name, name)
            if not sub.is_dir():
                raise ModelError(f"Ensemble member {name} is missing: no folder {sub}.")
            members[name] = Recognizer.from_pretrained(sub)
        oof = None
        if (folder / OOF_FILE).is_file():
            from .cnn import load_oof

            oof = load_oof(folder / OOF_FILE)
        return cls(members, weights=weights, temperature=config.get("temperature"), labels=config.get("labels"),
                   audio=config.get("audio"), metadata=metadata, oof=oof)


#: Not copied into an ensemble: hidden files, older versions, and the seed-compatible pickles / HDF5
#: (ser never loads them, a member may lack them, and they would double the folder's size).
_MEMBER_IGNORE = shutil.ignore_patterns(".*", "versions", *artifacts.UNSAFE_PATTERNS)


def _copy_member(member: Recognizer, target: Path) -> None:
    """Copy the version folder a member was loaded from into ``target`` (saving it first if it
    never was). Loaded from a models root, the immutable ``versions/<its version>`` is copied, not
    the top-level mirror, which a concurrent save may have moved on to a newer version."""
    if member.path is not None and (Path(member.path) / "metadata.json").is_file():
        source = Path(member.path)
        exact = source / "versions" / str(member.metadata.get("version", ""))
        if member.metadata.get("version") and (exact / "metadata.json").is_file():
            source = exact
        shutil.copytree(source, target, ignore=_MEMBER_IGNORE)
        return
    with tempfile.TemporaryDirectory(prefix="ser-member-") as tmp:
        version = member.save_pretrained(Path(tmp) / member.kind)
        shutil.copytree(version, target, ignore=_MEMBER_IGNORE)
        member.path = None  # the temporary folder disappears


# -- evaluation -----------------------------------------------------------------------------------

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
    from .calibration import apply_temperature, expected_calibration_error, fit_temperature
    from .cnn import oof_of
    from .training import _audio_settings, data_summary, library_versions

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
        "preprocessing": {"audio": _audio_settings(),
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
    import logging

    from .training import train_mlp

    params = mlp.metadata.get("params", {})
    search = params.get("search", {})
    _, report = train_mlp(clips, search=bool(search.get("enabled", True)), n_iter=int(search.get("n_iter", 8)),
                          params=params.get("mlp") if not search.get("enabled", True) else None,
                          variants=tuple(params.get("augmentation", ())), seed=int(params.get("seed", 0)),
                          importance=False, n_jobs=n_jobs, progress=progress)
    for protocol, res in report.results.items():
        saved = mlp.metadata.get("metrics", {}).get(protocol, {}).get("accuracy")
        if saved is not None and abs(saved - res.metrics["accuracy"]) > 1e-9:
            logging.getLogger(__name__).warning(
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
    from .cnn import train_cnn
    from .training import train_mlp

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
