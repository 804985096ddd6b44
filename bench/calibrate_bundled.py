"""Fit the temperature of an already trained MLP or CNN (e.g. the bundled ``models/mlp``) and save it as a new version.

MLP: the recipe of :func:`ser.training.mlp.train_mlp` (``calibrate=True``), through the same library
call (:meth:`ser.training.mlp.MLPTrainer.temperature`): out-of-fold predictions of the model's own
training clips, 3-fold GroupKFold by speaker, each inner model trained with the saved model's
parameters and augmentation; ``T`` minimises their negative log-likelihood.

CNN (``--kind cnn``): ``T`` is fitted on the model's own predictions (the real prediction path) of
the clips of its validation speakers, which early stopping held out of its training; the recipe
``bench/robustness_cnn.py`` evaluates on unseen actors.

The network itself is unchanged (same weights): only ``config.json`` gains ``temperature`` and
``metadata.json`` a ``calibration`` block. Usage::

    python -m bench.calibrate_bundled [--kind mlp|cnn] [--models models] [--data DIR] [--actors N] [--save]

Without ``--save`` it prints the temperature and the out-of-fold ECE before/after, and writes nothing.
``--actors N`` uses the first N speakers only (a smoke run; never saved).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from ser import settings
from ser.audio.augment import ORIGINAL
from ser.audio.corpora import load_corpus
from ser.features.handcrafted import FeatureConfig, extract_corpus
from ser.models.base import Recognizer
from ser.models.calibration import apply_temperature, expected_calibration_error, fit_temperature
from ser.models.mlp import MLPRecognizer
from ser.training.mlp import MLPTrainer

from .studies import N_JOBS, first_actors, log


def main(argv=None) -> int:
    data = settings.default_data_dir()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=str(settings.models_dir()))
    ap.add_argument("--data", default=str(data) if data else None, help="default: %(default)s")
    ap.add_argument("--kind", choices=("mlp", "cnn"), default="mlp")
    ap.add_argument("--actors", type=int, default=None, help="first N speakers only (a smoke run; never saved)")
    ap.add_argument("--save", action="store_true", help="save a new version with the temperature")
    args = ap.parse_args(argv)
    if args.data is None:
        ap.error("no corpus: pass --data or set SER_DATA_DIR")
    if args.actors is not None and args.save:
        ap.error("--actors makes a smoke run; it is never saved")
    clips = load_corpus(args.data)
    if args.actors is not None:
        clips = first_actors(clips, args.actors)
    if args.kind == "cnn":
        return calibrate_cnn(args, clips)

    rec = Recognizer.from_pretrained(f"{args.models}/mlp")
    assert isinstance(rec, MLPRecognizer)
    meta = rec.metadata
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["params"]["mlp"].items()}
    variants = (ORIGINAL, *meta["params"].get("augmentation", []))
    config = FeatureConfig(**meta["preprocessing"]["features"]) if "features" in meta.get("preprocessing", {}) \
        else rec.features
    log(f"{rec.path}: params {params}, variants {variants}, {len(clips)} clips")
    X, _ = extract_corpus([c.path for c in clips], config=config, variants=variants, n_jobs=N_JOBS, progress=False)
    trainer = MLPTrainer(X, clips, rec.labels, config=config, seed=meta["params"].get("seed", 0))
    everything = np.arange(len(clips))
    t, oof = trainer.temperature(everything, params, n_splits=3)
    return _summarise_and_save(rec, t, oof, trainer.targets(everything), args, held_out="training_oof",
                               fitted_on="out-of-fold predictions of the training clips (3-fold GroupKFold by speaker, "
                                         "inner models trained with this model's parameters and augmentation); never "
                                         "on test clips")


def _summarise_and_save(rec: Recognizer, t: float, proba: np.ndarray, y: np.ndarray, args, *, held_out: str,
                        fitted_on: str, **extra) -> int:
    """Print the calibration summary of ``T`` fitted on held-out ``proba``; with ``--save`` save ``rec``
    with that temperature as a new version of ``<models>/<kind>``."""
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


def calibrate_cnn(args, clips) -> int:
    rec = Recognizer.from_pretrained(f"{args.models}/cnn")
    if rec.temperature is not None:
        log(f"{rec.path} already has T={rec.temperature:.3f}; fitting on its raw probabilities")
    held = (rec.metadata.get("history") or {}).get("validation_speakers") or []
    if not held:
        raise SystemExit("This CNN's metadata names no validation speakers: nothing held out to fit T on.")
    clips = [c for c in clips if c.speaker in held]
    if not clips:
        raise SystemExit(f"No clips of the validation speakers {held} in {args.data}.")
    rec.temperature = None  # fit on raw probabilities; --save stores the new T instead of any old one
    proba = rec.predict_proba_batch([rec.load(c.path) for c in clips])
    y = np.array([rec.labels.index(c.emotion) for c in clips])
    return _summarise_and_save(rec, fit_temperature(proba, y), proba, y, args, held_out="validation",
                               fitted_on=f"this model's predictions of the {len(clips)} clips of its validation "
                                         f"speakers ({', '.join(held)}), held out of its training by early stopping; "
                                         "never on test clips",
                               evaluated_by="reports/calibration_cnn.json (the same recipe on 6 speaker-independent "
                                            "folds)")


if __name__ == "__main__":
    raise SystemExit(main())
