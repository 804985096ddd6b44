"""Robustness and calibration of the CNN (issue 8, parts 2 and 4): the CNN counterpart of ``robustness.py``.

On RAVDESS's six speaker-independent folds (actors 1-4, ..., 21-24), per fold:

``standard``
    the bundled recipe (:func:`ser.cnn.train_cnn` defaults): clean training clips + pitch +2,
    stretch 1.1, white noise 20 dB copies, random window, shift and spec masking;
``robust``
    the same + the two randomly degraded copies of each *training* clip the MLP uses
    (``degraded1``, ``degraded2``, :func:`ser.degrade.random_chain`), which are not the test conditions.

Each model is tested on the clean test fold and on every degradation of
:data:`ser.degrade.TEST_CONDITIONS` (applied to the test clips before silence trimming).
Calibration: a temperature is fitted per fold on the clean clips of the two validation speakers of
the training side (held out of the gradient steps, never the test fold; the MLP study's inner
K-fold would cost 3 more CNN trainings per fold) and applied to that fold's test clips.

Writes ``reports/robustness_cnn.json``, ``reports/calibration_cnn.json`` and, with matplotlib,
``reports/robustness_cnn.png`` and ``reports/reliability_cnn.png``. Usage::

    python -m bench.robustness_cnn [--models standard robust] [--actors 8] [--epochs N] [--dry-run]

``--actors`` / ``--epochs`` make a quick smoke run (never written as results unless asked). Every fit
goes through :class:`ser.training.cnn.CNNTrainer`, the library's CNN training.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("SER_TF_THREADS", "2")  # the CNN trains alone: both cores for TensorFlow

import numpy as np  # noqa: E402

from ser.audio.augment import ORIGINAL, VARIANTS  # noqa: E402
from ser.audio.degrade import TEST_CONDITIONS, TRAINING_VARIANTS  # noqa: E402
from ser.models.calibration import expected_calibration_error, per_fold_temperature  # noqa: E402
from ser.training.cnn import DEFAULT_PARAMS, CNNTrainer  # noqa: E402
from ser.training.metadata import labels_of  # noqa: E402
from ser.training.protocols import speaker_folds  # noqa: E402

from .robustness import _calib, _describe, _metrics, _pngs  # noqa: E402
from .studies import first_actors, library_note, load_clips, log, logmel, release_keras, save_json  # noqa: E402

MODELS = ("standard", "robust")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--actors", type=int, default=24, help="first N actors only (a quick smoke run)")
    ap.add_argument("--epochs", type=int, help="override the maximum number of epochs (smoke runs)")
    ap.add_argument("--dry-run", action="store_true", help="write nothing")
    args = ap.parse_args(argv)
    started = time.time()

    clips = first_actors(load_clips(["ravdess"]), args.actors)
    labels = labels_of(clips)
    aug = (ORIGINAL, *VARIANTS)
    extra = TRAINING_VARIANTS if "robust" in args.models else ()
    every = aug + TEST_CONDITIONS + extra
    log(f"log-mel images: {len(clips)} clips x {len(every)} variants")
    images, hashes = logmel(clips, every)
    col = {name: i for i, name in enumerate(every)}
    conditions = ("clean", *TEST_CONDITIONS)
    cond_col = {"clean": 0, **{c: col[c] for c in TEST_CONDITIONS}}
    train_cols = {"standard": [col[v] for v in aug], "robust": [col[v] for v in aug + extra]}
    y = np.array([labels.index(c.emotion) for c in clips])
    folds = speaker_folds(clips)
    params = {"epochs": args.epochs} if args.epochs else None

    results, calib, histories, fold_acc = {}, {}, {}, {}
    for m in args.models:
        trainer = CNNTrainer(images, clips, labels, train_cols=train_cols[m], groups=hashes, params=params)
        proba = {c: np.zeros((len(clips), len(labels))) for c in conditions}
        temps, val_ece = [], []
        fold_acc[m], histories[m] = [], []
        for k, test in enumerate(folds):
            t0 = time.time()
            fitted = trainer.fit(np.setdiff1d(np.arange(len(clips)), test))
            histories[m].append({key: fitted.history[key] for key in ("epochs", "best_epoch", "seconds_per_epoch")})
            for c in conditions:
                proba[c][test] = trainer.proba(fitted.model, test, col=cond_col[c])
            t, pv, yv = trainer.temperature(fitted)
            temps.append(t)
            val_ece.append(expected_calibration_error(pv, yv))
            fold_acc[m].append(float(np.mean(proba["clean"][test].argmax(1) == y[test])))
            log(f"{m:9s} fold {k + 1}/{len(folds)}: clean acc {fold_acc[m][-1]:.3f}, T={t:.2f}, "
                f"{fitted.history['epochs']} epochs ({time.time() - t0:.0f} s)")
            del fitted
            release_keras()
        results[m] = {c: _metrics(y, proba[c], labels) for c in conditions}
        results[m]["clean"]["fold_accuracy"] = fold_acc[m]

        def scaled(c, _p=proba, _ts=temps):
            return per_fold_temperature(_p[c], _ts, folds)

        calib[m] = {"temperatures": temps, "validation_ece_before": val_ece,
                    "clean": _calib(proba["clean"], scaled("clean"), y),
                    "by_condition": {c: {k: v for k, v in _calib(proba[c], scaled(c), y).items()
                                         if not k.startswith("reliab")} for c in TEST_CONDITIONS}}
    decision = None
    if {"standard", "robust"} <= set(results):
        drop = results["standard"]["clean"]["accuracy"] - results["robust"]["clean"]["accuracy"]
        decision = {"clean_accuracy_drop_points": round(100 * drop, 2), "keep_robust_training": bool(drop <= 0.01),
                    "rule": "keep the robust augmentation only if clean accuracy drops by at most 1 point"}
    summary = {m: {c: round(r["accuracy"], 3) for c, r in v.items()} for m, v in results.items()}
    log(f"accuracy: {summary}")
    log(f"ECE before/after: { {m: (round(c['clean']['ece_before'], 3), round(c['clean']['ece_after'], 3)) for m, c in calib.items()} }")
    if args.dry_run:
        return 0
    common = {**{k: v for k, v in library_note().items() if k not in ("mlp_params", "search")},
              "model": "cnn", "cnn_params": {**DEFAULT_PARAMS, **(params or {})},
              "search": "none: ser.cnn.DEFAULT_PARAMS (the bundled CNN's recipe), seed 0",
              "histories": histories, "seconds": round(time.time() - started)}
    if args.actors < 24 or args.epochs:
        common["smoke_run"] = f"actors 1-{args.actors}, epochs {args.epochs or DEFAULT_PARAMS['epochs']}"
    protocol = (f"RAVDESS speaker-independent, {len(folds)} folds of 4 actors, every clip tested once; "
                "degradations applied to test clips before silence trimming; augmentation on training folds only; "
                "early stopping on 2 speakers of the training side")
    save_json("robustness_cnn.json", {
        "study": "CNN accuracy under degraded audio, standard vs robust training (issue 8.2)",
        "protocol": protocol, "labels": labels, "chance_uar": 1 / len(labels),
        "conditions": {c: _describe(c) for c in conditions},
        "training": {"standard": list(aug), "robust": list(aug + TRAINING_VARIANTS)},
        "results": results, "decision": decision, **common,
    })
    save_json("calibration_cnn.json", {
        "study": "CNN temperature scaling fitted on the validation speakers of the training side (issue 8.4)",
        "protocol": protocol + "; T fitted per outer fold on the clean clips of the 2 validation speakers, "
                               "then applied to that fold's test actors",
        "ece": "top-label expected calibration error, 15 equal-width bins; reliability rows use 10 bins",
        "results": calib, **common,
    })
    _pngs(results, calib, conditions, decision, model="CNN", suffix="_cnn")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
