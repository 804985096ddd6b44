"""Robustness, robust training, calibration and per-speaker normalisation of the MLP (issue 8, parts 2-4).

On RAVDESS's six speaker-independent folds (actors 1-4, 5-8, ..., 21-24), four models are trained
per fold with fixed default parameters (no search):

``standard``
    clean training clips + the standard augmentation (pitch +2, stretch 1.1, white noise 20 dB);
``robust``
    the same + two randomly degraded copies of each *training* clip (``degraded1``, ``degraded2``:
    random chains of reverberation, white/babble noise 5-20 dB, gain, telephone or codec;
    :func:`ser.degrade.random_chain`), which are not the test conditions;
``standard+speaker_norm`` (and ``robust+speaker_norm`` on request)
    the same with per-speaker standardisation (:mod:`ser.models.speaker`).

Each model is tested on the clean test fold and on every degradation of
:data:`ser.degrade.TEST_CONDITIONS` applied to the test clips (before silence trimming, as real
audio arrives). Calibration: a temperature is fitted per fold on out-of-fold predictions of the
*training* actors (inner GroupKFold by actor, 3 folds unless --inner-splits, inner models trained like the outer one) and
applied to the test fold. Speaker norm in batch mode: test speakers' clips normalised in random
batches of k clips, and in single-emotion batches (the failure case).

Writes ``reports/robustness.json``, ``reports/calibration.json``, ``reports/speaker_norm.json`` and,
with matplotlib, ``reports/robustness.png`` and ``reports/reliability.png``. Usage::

    python -m bench.robustness [--models standard robust ...] [--inner-splits 3] [--actors 3 --dry-run]

Every fit goes through :class:`ser.training.mlp.MLPTrainer`, the library's MLP training.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from joblib import Parallel, delayed

from ser import settings
from ser.audio.augment import ORIGINAL, VARIANTS
from ser.audio.degrade import TEST_CONDITIONS, TRAINING_VARIANTS, parse_variant
from ser.models.calibration import expected_calibration_error, per_fold_temperature, reliability_diagram
from ser.models.speaker import speaker_standardize
from ser.training.metadata import labels_of
from ser.training.mlp import MLPTrainer
from ser.training.protocols import classification_metrics, speaker_folds

from .studies import N_JOBS, features, first_actors, library_note, load_clips, log, save_json

MODELS = ("standard", "robust", "standard+speaker_norm", "robust+speaker_norm")
DEFAULT_MODELS = ("standard", "robust", "standard+speaker_norm")  # robust+speaker_norm: on request
CALIBRATED = ("standard", "robust")
BATCH_SIZES = (5, 10, 20)


def _task(X, clips, labels, train_cols, name, k, test, conditions, cond_col, calibrate, inner_splits,
          params=None) -> dict:
    """Train one model on the training actors of fold ``k``; its test probabilities under every
    condition, the training-side temperature, and the batch-normalisation study."""
    t0 = time.time()
    y = np.array([labels.index(c.emotion) for c in clips])
    speakers = np.array([c.speaker for c in clips])
    trainer = MLPTrainer(X, clips, labels, train_cols=train_cols, speaker_norm=name.endswith("speaker_norm"))
    train = np.setdiff1d(np.arange(len(clips)), test)
    model = trainer.fit(train, params)
    out = {"model": name, "fold": k, "proba": {c: trainer.proba(model, test, col=cond_col[c]) for c in conditions}}
    out["accuracy"] = float(np.mean(out["proba"]["clean"].argmax(1) == y[test]))
    if calibrate:
        t, oof = trainer.temperature(train, params, n_splits=inner_splits)
        out["temperature"], out["train_oof_ece"] = t, expected_calibration_error(oof, y[train])
    batch: dict = {}
    _batch_study(batch, trainer, model, test, y, speakers, seed=k)
    out["batch"] = {kind: (v["right"], v["n"]) for kind, v in batch.items()}
    out["seconds"] = time.time() - t0
    return out


def _metrics(y: np.ndarray, proba: np.ndarray, labels: list[str]) -> dict:
    m = classification_metrics(y, proba.argmax(axis=1), labels)
    return {"accuracy": m["accuracy"], "uar": m["uar"], "macro_f1": m["macro_f1"], "n_test": m["n_test"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=MODELS)
    ap.add_argument("--inner-splits", type=int, default=3)
    ap.add_argument("--actors", type=int, default=24, help="first N actors only (a quick smoke run)")
    ap.add_argument("--robust-variants", nargs="+", default=list(TRAINING_VARIANTS), metavar="NAME",
                    help="degraded training copies of the robust model (default: %(default)s)")
    ap.add_argument("--dry-run", action="store_true", help="write nothing")
    ap.add_argument("--calibration-only", action="store_true",
                    help="write only reports/calibration_inner<N>.json (a follow-up with another --inner-splits)")
    ap.add_argument("--params-from", help="a saved MLP folder whose network parameters replace the defaults "
                                          "(with --calibration-only: reports/calibration_<folder name>.json)")
    args = ap.parse_args(argv)
    started = time.time()

    clips = first_actors(load_clips(["ravdess"]), args.actors)
    labels = labels_of(clips)
    aug = (ORIGINAL, *VARIANTS)
    extra = tuple(args.robust_variants)
    log(f"features: {len(clips)} clips x ({len(aug)} + {len(TEST_CONDITIONS)}) variants")
    X = np.concatenate([features(clips, aug), features(clips, TEST_CONDITIONS)], axis=1)
    col = {name: i for i, name in enumerate(aug + TEST_CONDITIONS + extra)}
    # robust models last: their training variants are loaded (or computed) only when needed
    args.models = sorted(args.models, key=lambda m: m.startswith("robust"))
    conditions = ("clean", *TEST_CONDITIONS)
    cond_col = {"clean": 0, **{c: col[c] for c in TEST_CONDITIONS}}
    train_cols = {"standard": [col[v] for v in aug], "robust": [col[v] for v in aug + extra]}
    y = np.array([labels.index(c.emotion) for c in clips])
    folds = speaker_folds(clips)

    proba = {m: {c: np.zeros((len(clips), len(labels))) for c in conditions} for m in args.models}
    temps: dict[str, list[float]] = {m: [0.0] * len(folds) for m in args.models if m in CALIBRATED}
    train_oof: dict[str, list] = {m: [0.0] * len(folds) for m in temps}
    batch: dict[str, dict] = {}
    fold_acc: dict[str, list[float]] = {m: [0.0] * len(folds) for m in args.models}
    if any(m.startswith("robust") for m in args.models):
        log(f"features: {len(clips)} clips x {len(extra)} training degradations")
        X = np.concatenate([X, features(clips, extra)], axis=1)
    # one task per (model, fold), heaviest (calibrated) first, on N_JOBS processes
    tasks = sorted(((m, k) for m in args.models for k in range(len(folds))), key=lambda t: t[0] not in CALIBRATED)
    params = None
    if args.params_from:
        meta = json.loads((Path(args.params_from) / "metadata.json").read_text())
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["params"]["mlp"].items()}
        source = f"{Path(args.params_from).name} {meta.get('version', '')}".strip()
        log(f"network parameters of {source}: {params}")
    jobs = (delayed(_task)(X, clips, labels, train_cols[m.split("+")[0]], m, k, folds[k], conditions, cond_col,
                           m in CALIBRATED, args.inner_splits, params) for m, k in tasks)
    for out in Parallel(n_jobs=N_JOBS, return_as="generator_unordered")(jobs):
        m, k, test = out["model"], out["fold"], folds[out["fold"]]
        for c in conditions:
            proba[m][c][test] = out["proba"][c]
        fold_acc[m][k] = out["accuracy"]
        if m in temps:
            temps[m][k], train_oof[m][k] = out["temperature"], out["train_oof_ece"]
        for kind, (right, n) in out["batch"].items():
            slot = batch.setdefault(m, {}).setdefault(kind, {"right": 0, "n": 0})
            slot["right"] += right
            slot["n"] += n
            slot["accuracy"] = slot["right"] / slot["n"]
        t_note = f", T={out['temperature']:.2f}" if m in temps else ""
        log(f"{m:24s} fold {k + 1}/{len(folds)}: clean acc {out['accuracy']:.3f}{t_note} ({out['seconds']:.0f} s)")

    results = {m: {c: _metrics(y, proba[m][c], labels) for c in conditions} for m in args.models}
    for m in args.models:
        results[m]["clean"]["fold_accuracy"] = fold_acc[m]
    # calibration: per-fold temperatures applied to their own test fold
    calib = {}
    for m, ts in temps.items():
        def scaled(c, _m=m, _ts=ts):
            return per_fold_temperature(proba[_m][c], _ts, folds)

        calib[m] = {
            "temperatures": ts,
            "train_oof_ece_before": train_oof[m],
            "clean": _calib(proba[m]["clean"], scaled("clean"), y),
            "by_condition": {c: {k: v for k, v in _calib(proba[m][c], scaled(c), y).items() if not k.startswith("reliab")}
                             for c in TEST_CONDITIONS},
        }
    decision = None
    if {"standard", "robust"} <= set(results):
        drop = results["standard"]["clean"]["accuracy"] - results["robust"]["clean"]["accuracy"]
        decision = {"clean_accuracy_drop_points": round(100 * drop, 2), "keep_robust_training": bool(drop <= 0.01),
                    "rule": "keep the robust augmentation only if clean accuracy drops by at most 1 point"}
    if args.dry_run:
        log(json.dumps({m: {c: round(r["accuracy"], 3) for c, r in v.items()} for m, v in results.items()}))
        log(json.dumps({m: {k: round(v["accuracy"], 3) for k, v in b.items()} for m, b in batch.items()}))
        log(json.dumps({m: {k: v for k, v in c["clean"].items() if not k.startswith("reliab")} for m, c in calib.items()}))
        return 0
    common = {**library_note(), "seconds": round(time.time() - started)}
    calibration_payload = {
        "study": "temperature scaling fitted on out-of-fold predictions of the training actors (issue 8.4)",
        "protocol": None,  # filled below
        "inner_splits": args.inner_splits,
        "ece": "top-label expected calibration error, 15 equal-width bins; reliability rows use 10 bins",
        "results": calib, **common,
    }
    if args.calibration_only:
        calibration_payload["protocol"] = (
            "RAVDESS speaker-independent, 6 folds of 4 actors; T fitted per outer fold on inner "
            f"{args.inner_splits}-fold GroupKFold (by actor) predictions of the training actors only")
        if params is not None:
            calibration_payload["mlp_params"] = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
            calibration_payload["search"] = (f"none: the network parameters of the saved model {source}, fixed for "
                                             "every fold (that model's own run searched per fold)")
            calibration_payload["protocol"] += f"; network parameters of the saved model {source}"
        name = f"calibration_{Path(args.params_from).name}" if params is not None else \
            f"calibration_inner{args.inner_splits}"
        save_json(f"{name}.json", calibration_payload)
        return 0
    protocol = ("RAVDESS speaker-independent, 6 folds of 4 actors (1-4, ..., 21-24), every clip tested once; "
                "degradations applied to test clips before silence trimming; augmentation on training folds only")
    save_json("robustness.json", {
        "study": "accuracy under degraded audio, standard vs robust training (issue 8.2)",
        "protocol": protocol, "labels": labels, "chance_uar": 1 / len(labels),
        "conditions": {c: _describe(c) for c in conditions},
        "training": {"standard": list(aug), "robust": list(aug + extra),
                     "robust_chains": "per clip: reverb RT60 0.2-0.9 s (30 %), white/babble noise 5-20 dB (60 %), "
                                      "gain -20..+6 dB, then telephone (20 %) / Opus 6-16 kbit/s (20 %) / "
                                      "MP3 16-32 kbit/s (20 %) / none"},
        "results": results, "decision": decision, **common,
    })
    if calib:
        calibration_payload["protocol"] = (
            protocol + f"; T fitted per outer fold on inner {args.inner_splits}-fold GroupKFold (by actor) predictions "
            "of the training actors only, then applied to that fold's test actors")
        save_json("calibration.json", calibration_payload)
    if batch:
        save_json("speaker_norm.json", {
            "study": "per-speaker normalisation in batch mode (issue 8.3)",
            "protocol": protocol + "; test speakers' clean clips normalised with the statistics of the batch they "
                                   "arrive in (transductive, unlabeled)",
            "models": {m: {"trained_on": "speaker-normalised features" if m.endswith("speaker_norm") else
                           "raw features (test batches mapped onto the training statistics)",
                           "no_normalisation_clean": results[m.split("+")[0]]["clean"]["accuracy"]
                           if m.split("+")[0] in results else None,
                           "batches": b,
                           "under_degradation": ({c: results[m][c] for c in TEST_CONDITIONS}
                                                 if m.endswith("speaker_norm") else None)}
                       for m, b in batch.items()},
            "batch_kinds": {"all": "all of the test speaker's clips (60 per RAVDESS actor)",
                            "5/10/20": "random batches of k clips of one speaker (mixed emotions)",
                            "single_emotion": "every clip of the batch has the same emotion (worst case)"},
            **common,
        })
    _pngs(results, calib, conditions, decision)
    return 0


def _flagging(p: np.ndarray, y: np.ndarray, threshold: float) -> dict:
    """What the app's "uncertain" flag (top probability < threshold) does on these predictions."""
    low = p.max(1) < threshold
    right = p.argmax(1) == y
    return {"threshold": threshold, "flagged_fraction": float(low.mean()),
            "accuracy_flagged": float(right[low].mean()) if low.any() else None,
            "accuracy_not_flagged": float(right[~low].mean()) if (~low).any() else None}


def _calib(before: np.ndarray, after: np.ndarray, y: np.ndarray) -> dict:
    t = settings.uncertain_below()
    return {"uncertain_flag": {"raw": _flagging(before, y, t), "calibrated": _flagging(after, y, t)},
            "ece_before": expected_calibration_error(before, y), "ece_after": expected_calibration_error(after, y),
            "mean_confidence_before": float(before.max(1).mean()), "mean_confidence_after": float(after.max(1).mean()),
            "accuracy": float(np.mean(before.argmax(1) == y)),
            "reliability_before": reliability_diagram(before, y), "reliability_after": reliability_diagram(after, y)}


def _batch_study(out: dict, trainer: MLPTrainer, model, test, y, speakers, *, seed: int) -> None:
    """Accuracy when each test speaker's clean clips are normalised in batches: all of the speaker's
    clips, random batches of k, or single-emotion batches (the failure case).

    A model trained on normalised features gets the z-scores; a model trained on raw features gets
    them mapped onto its training distribution (``z * scaler.scale_ + scaler.mean_``), which needs
    no retraining.
    """
    rng = np.random.default_rng(seed)
    Xc = trainer.X[test, 0]
    scaler = model.named_steps["scaler"]
    for k in ("all", *BATCH_SIZES, "single_emotion"):
        groups = np.empty(len(test), dtype=object)
        for s in np.unique(speakers[test]):
            rows = np.flatnonzero(speakers[test] == s)
            if k == "all":
                groups[rows] = s
            elif k == "single_emotion":
                for r in rows:
                    groups[r] = f"{s}|{y[test][r]}"
            else:
                perm = rng.permutation(rows)
                for j, r in enumerate(perm):
                    groups[r] = f"{s}|{min(j // k, len(rows) // k - 1)}"  # the remainder joins the last batch
        z = speaker_standardize(Xc, groups)
        rows_in = z if trainer.speaker_norm else z * scaler.scale_ + scaler.mean_
        p = trainer.proba(model, rows=rows_in)
        slot = out.setdefault(str(k), {"right": 0, "n": 0})
        slot["right"] += int(np.sum(p.argmax(1) == y[test]))
        slot["n"] += len(test)
        slot["accuracy"] = slot["right"] / slot["n"]


def _describe(c: str) -> str:
    if c == "clean":
        return "unmodified test clips"
    kind, a = parse_variant(c)
    return {"noise": lambda: f"{a[0]} noise at {a[1]:g} dB SNR (against the voiced part)",
            "telephone": lambda: "telephone band: 8 kHz, 300-3400 Hz, G.711 mu-law",
            "codec": lambda: f"{a[0]} at {a[1]} kbit/s (ffmpeg round trip)",
            "reverb": lambda: f"synthetic room, RT60 {a[0]:g} s, DRR 0 dB",
            "gain": lambda: f"gain {a[0]:+g} dB{' (clipped at full scale)' if a[0] > 0 else ''}"}[kind]()


def _pngs(results: dict, calib: dict, conditions, decision: dict | None, *, model: str = "MLP",
          suffix: str = "") -> None:
    """``reports/robustness{suffix}.png`` and ``reports/reliability{suffix}.png`` (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib not installed: PNG figures skipped (pip install matplotlib)")
        return
    shown = [m for m in ("standard", "robust") if m in results]
    if shown:
        fig, ax = plt.subplots(figsize=(11, 4.2), dpi=110)
        x = np.arange(len(conditions))
        w = 0.8 / len(shown)
        for i, m in enumerate(shown):
            acc = [100 * results[m][c]["accuracy"] for c in conditions]
            ax.bar(x + (i - (len(shown) - 1) / 2) * w, acc, w, label=f"{m} training")
        ax.axhline(100 / 8, color="grey", ls=":", lw=1)
        ax.text(len(conditions) - 0.5, 100 / 8 + 1, "chance", ha="right", color="grey", fontsize=8)
        ax.set_xticks(x, conditions, rotation=35, ha="right", fontsize=8)
        ax.set_ylabel("accuracy %")
        ax.set_ylim(0, 100)
        ax.set_title(f"{model} on RAVDESS, speaker-independent (6 folds): accuracy under degraded test audio")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = settings.reports_dir() / f"robustness{suffix}.png"
        fig.savefig(path)
        plt.close(fig)
        log(f"wrote {path}")
    shipped = "robust" if (results.get("robust") and decision and decision["keep_robust_training"]) else "standard"
    if shipped in calib:
        c = calib[shipped]["clean"]
        fig, ax = plt.subplots(figsize=(4.8, 4.5), dpi=110)
        for key, label, style in (("reliability_before", f"raw (ECE {c['ece_before']:.3f})", "o--"),
                                  ("reliability_after", f"temperature-scaled (ECE {c['ece_after']:.3f})", "s-")):
            rows = [r for r in c[key] if r["count"]]
            ax.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], style, label=label)
        ax.plot([0, 1], [0, 1], color="grey", lw=1, ls=":")
        ax.set_xlabel("confidence (top probability)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"Reliability of the {shipped}-trained {model}, RAVDESS unseen actors", fontsize=9)
        ax.legend(fontsize=8, loc="upper left")
        fig.tight_layout()
        path = settings.reports_dir() / f"reliability{suffix}.png"
        fig.savefig(path)
        plt.close(fig)
        log(f"wrote {path}")


if __name__ == "__main__":
    raise SystemExit(main())
