"""Fit the temperature of an already trained MLP or CNN (e.g. the bundled ``models/mlp``) and save it as a new version.

MLP: the recipe is :func:`ser.training.train_mlp`'s (``calibrate=True``): out-of-fold predictions
of the model's own training clips, 3-fold GroupKFold by speaker, each inner model trained with the
saved model's parameters and augmentation; ``T`` minimises their negative log-likelihood.

CNN (``--kind cnn``): ``T`` is fitted on the model's own predictions (the real prediction path) of
the clips of its validation speakers, which early stopping held out of its training; the recipe
``bench/robustness_cnn.py`` evaluates on unseen actors.

The network itself is unchanged (same weights): only ``config.json`` gains ``temperature`` and
``metadata.json`` a ``calibration`` block. Usage::

    python bench/calibrate_bundled.py [--kind mlp|cnn] [--models models] [--data ../shared/data/ravdess] [--save]

Without ``--save`` it prints the temperature and the out-of-fold ECE before/after, and writes nothing.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from studies import log  # noqa: I001  (sets one BLAS thread per process)

from ser.audio.augment import ORIGINAL
from ser.models.calibration import apply_temperature, expected_calibration_error, fit_temperature, out_of_fold_proba
from ser.audio.corpora import load_corpus
from ser.features.handcrafted import FeatureConfig, extract_corpus
from ser.models.mlp import fit_pipeline
from ser.models.mlp import MLPRecognizer
from ser.models.base import Recognizer


def main(argv=None) -> int:
    from studies import REPO

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=str(REPO / "models"))
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "ravdess"))
    ap.add_argument("--kind", choices=("mlp", "cnn"), default="mlp")
    ap.add_argument("--save", action="store_true", help="save a new version with the temperature")
    args = ap.parse_args(argv)
    if args.kind == "cnn":
        return calibrate_cnn(args)

    rec = Recognizer.from_pretrained(f"{args.models}/mlp")
    assert isinstance(rec, MLPRecognizer)
    meta = rec.metadata
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["params"]["mlp"].items()}
    variants = (ORIGINAL, *meta["params"].get("augmentation", []))
    seed = meta["params"].get("seed", 0)
    clips = load_corpus(args.data)
    config = FeatureConfig(**meta["preprocessing"]["features"]) if "features" in meta.get("preprocessing", {}) \
        else rec.features
    log(f"{rec.path}: params {params}, variants {variants}, {len(clips)} clips")
    X, _ = extract_corpus([c.path for c in clips], config=config, variants=variants, n_jobs=2, progress=False)
    y = np.array([c.emotion for c in clips])
    speakers = np.array([c.speaker for c in clips])
    nv, nf = X.shape[1], X.shape[2]

    def inner(tr, te):
        model = fit_pipeline(X[tr].reshape(-1, nf), np.repeat(y[tr], nv), random_state=seed, **params)
        log(f"inner fold done ({len(tr)} training clips)")
        return MLPRecognizer(model, features=config, labels=rec.labels).proba_from_features(X[te, 0])

    oof = out_of_fold_proba(inner, speakers, n_splits=3)
    yi = np.array([rec.labels.index(e) for e in y])
    return _fit_and_save(rec, oof, yi, args, held_out="training_oof",
                         fitted_on="out-of-fold predictions of the training clips (3-fold GroupKFold by speaker, "
                                   "inner models trained with this model's parameters and augmentation); never on "
                                   "test clips")


def _fit_and_save(rec: Recognizer, proba: np.ndarray, y: np.ndarray, args, *, held_out: str, fitted_on: str,
                  **extra) -> int:
    """Fit ``T`` on held-out ``proba``, print the calibration summary, and with ``--save`` save
    ``rec`` with that temperature as a new version of ``<models>/<kind>``."""
    t = fit_temperature(proba, y)
    summary = {"method": "temperature scaling", "temperature": t, "fitted_on": fitted_on,
               "ece": "top-label expected calibration error, 15 equal-width bins",
               held_out: {"ece_before": expected_calibration_error(proba, y),
                          "ece_after_in_sample": expected_calibration_error(apply_temperature(proba, t), y),
                          "accuracy": float(np.mean(proba.argmax(1) == y))}, **extra}
    print(json.dumps(summary, indent=2))
    if args.save:
        rec.temperature = t
        folder = rec.save_pretrained(f"{args.models}/{rec.kind}", metadata={"calibration": summary})
        log(f"saved {folder}")
    return 0


def calibrate_cnn(args) -> int:
    rec = Recognizer.from_pretrained(f"{args.models}/cnn")
    if rec.temperature is not None:
        log(f"{rec.path} already has T={rec.temperature:.3f}; fitting on its raw probabilities")
    held = (rec.metadata.get("history") or {}).get("validation_speakers") or []
    if not held:
        raise SystemExit("This CNN's metadata names no validation speakers: nothing held out to fit T on.")
    clips = [c for c in load_corpus(args.data) if c.speaker in held]
    rec.temperature = None  # fit on raw probabilities; --save stores the new T instead of any old one
    proba = np.stack([rec.predict_proba(rec.load(c.path)) for c in clips])
    y = np.array([rec.labels.index(c.emotion) for c in clips])
    return _fit_and_save(rec, proba, y, args, held_out="validation",
                         fitted_on=f"this model's predictions of the {len(clips)} clips of its validation speakers "
                                   f"({', '.join(held)}), held out of its training by early stopping; never on "
                                   "test clips",
                         evaluated_by="reports/calibration_cnn.json (the same recipe on 6 speaker-independent folds)")


if __name__ == "__main__":
    raise SystemExit(main())
