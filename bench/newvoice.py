"""A new voice (issue 14): each lever alone and combined, on RAVDESS's EmoBox folds → ``reports/newvoice.json``.

For every member recipe: speaker-independent out-of-fold probabilities on RAVDESS (EmoBox's six
folds, 8 emotions, one clip at a time, nothing about the test speaker), the same test clips with
their gain shifted by -20 and +20 dB (clipped at full scale as a converter would), and the model
trained on all of RAVDESS tested on TESS, a corpus it never heard (its 7 emotions; the 8-way model,
so "calm" answers count as errors). Reported: accuracy, UAR (EmoBox's "UA"), mean ± std over folds,
per-emotion recall and the predicted-label distribution (an emotion that is never predicted has
collapsed).

Recipes (every fit through the library's trainers: :class:`ser.training.mlp.MLPTrainer`,
:class:`ser.training.smile.SmileTrainer`):

``mlp``            handcrafted features (543), ``Pipeline(StandardScaler, MLPClassifier)`` with
                   :data:`ser.models.mlp.DEFAULT_PARAMS`, clean clips only
``mlp+level``      the same on clips normalised to an active-speech level of -26 dBFS
``mlp+level+band`` the same, mel bands, MFCCs and spectral contrast below 7 kHz only (the bundled MLP's
                   features: the band next to 8 kHz is the resampler's or codec's roll-off)
``smile``          openSMILE ComParE_2016 + eGeMAPSv02 → logistic regression, C = 0.01
``smile+level``    the same on level-normalised clips
``fusion: ...``    the equal-weight mean of members' probabilities (nothing fitted)

``--cnn DIR`` adds a saved CNN's out-of-fold predictions (``oof_predictions.npz``, written by its
training run on the same EmoBox folds) to the fusions.

    python -m bench.newvoice [--cnn /path/to/models/cnn] [--out newvoice.json]
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from ser.audio.corpora import EMOTIONS
from ser.features.handcrafted import FeatureConfig, extract_corpus
from ser.features.smile import SmileConfig
from ser.models.base import Recognizer
from ser.models.smile import DEFAULT_C
from ser.training.ensemble import results_from_oof
from ser.training.mlp import MLPTrainer
from ser.training.protocols import classification_metrics, speaker_folds
from ser.training.smile import LEVEL_DB, SmileTrainer, smile_corpus

from .studies import N_JOBS, library_note, load_clips, log, save_json

GAINS = ("gain-20dB", "gain+20dB")


def _scores(y: np.ndarray, proba: np.ndarray, labels: list[str], folds: list[np.ndarray] | None = None) -> dict:
    pred = proba.argmax(axis=1)
    m = classification_metrics(y, pred, labels)
    out = {"accuracy": m["accuracy"], "uar": m["uar"], "n_test": m["n_test"],
           "recall": {lab: m["report"][lab]["recall"] for lab in labels  # emotions the test set has
                      if lab in m["report"] and m["report"][lab].get("support", 0) > 0},
           "predicted": {lab: float(np.mean(pred == j)) for j, lab in enumerate(labels)}}
    if folds is not None:
        per = [classification_metrics(y[f], pred[f], labels) for f in folds]
        out["folds"] = {"accuracy": [p["accuracy"] for p in per], "uar": [p["uar"] for p in per]}
        for k in ("accuracy", "uar"):
            out[f"{k}_mean"], out[f"{k}_std"] = float(np.mean(out["folds"][k])), float(np.std(out["folds"][k]))
    return out


def ravdess_and_tess() -> tuple[list, list, list[str], np.ndarray, np.ndarray, list[np.ndarray]]:
    """Both corpora's clips, the 8 labels, their label columns and RAVDESS's EmoBox folds."""
    rav, tess = load_clips(["ravdess"]), load_clips(["tess"])
    labels = list(EMOTIONS)
    y = np.array([labels.index(c.emotion) for c in rav])
    yt = np.array([labels.index(c.emotion) for c in tess])
    return rav, tess, labels, y, yt, [np.asarray(f) for f in speaker_folds(rav)]


def _member(trainer, X, Xt, labels, folds, params) -> dict:
    """Out-of-fold probabilities (clean and gain-shifted columns) and the all-RAVDESS model on TESS."""
    proba = {v: np.zeros((X.shape[0], len(labels))) for v in ("clean", *GAINS)}
    for test in folds:
        train = np.setdiff1d(np.arange(X.shape[0]), test)
        model = trainer.fit(train, params)
        for col, v in enumerate(("clean", *GAINS)):
            proba[v][test] = trainer.proba(model, test, col=col)
    model = trainer.fit(np.arange(X.shape[0]), params)
    tess = trainer.proba(model, rows=Xt)
    return {"proba": proba, "tess": tess}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cnn", default=None, help="a saved CNN trained on RAVDESS's EmoBox folds (its OOF file)")
    ap.add_argument("--out", default="newvoice.json")
    args = ap.parse_args(argv)
    started = time.time()
    rav, tess, labels, y, yt, folds = ravdess_and_tess()
    columns = ("original", *GAINS)
    members: dict[str, dict] = {}
    recipes = {
        "mlp": ("mlp", FeatureConfig()), "mlp+level": ("mlp", FeatureConfig(level_db=LEVEL_DB)),
        "mlp+level+band": ("mlp", FeatureConfig(level_db=LEVEL_DB, band_limit=7000.0)),
        "smile": ("smile", SmileConfig()), "smile+level": ("smile", SmileConfig(level_db=LEVEL_DB)),
    }
    for name, (kind, config) in recipes.items():
        t0 = time.time()
        if kind == "mlp":
            X, _ = extract_corpus([c.path for c in rav], config=config, variants=columns, n_jobs=N_JOBS, progress=False)
            Xt, _ = extract_corpus([c.path for c in tess], config=config, n_jobs=N_JOBS, progress=False)
            trainer, params = MLPTrainer(X, rav, labels, config=config, train_cols=[0]), {}
        else:
            X, _ = smile_corpus([c.path for c in rav], config=config, variants=columns, n_jobs=N_JOBS)
            Xt, _ = smile_corpus([c.path for c in tess], config=config, n_jobs=N_JOBS)
            trainer, params = SmileTrainer(X, rav, labels, config=config, train_cols=[0]), {"C": DEFAULT_C}
        members[name] = _member(trainer, X, Xt[:, 0], labels, folds, params)
        log(f"{name}: {time.time() - t0:.0f} s")
    if args.cnn:
        cnn = Recognizer.from_pretrained(args.cnn)
        res = results_from_oof(cnn.oof, rav)["speaker_independent"]
        proba = np.zeros((len(rav), len(labels)))
        proba[res.test_index] = res.proba[:, [list(res.labels).index(lab) for lab in labels]]
        members["cnn"] = {"proba": {"clean": proba}, "cnn_version": cnn.metadata.get("version")}
    out: dict = {"protocol": "RAVDESS, EmoBox's six speaker-independent folds (test actors {1,11,20,21}, {4,10,12,14}, "
                             "{8,9,19,23}, {3,5,7,24}, {2,15,16,18}, {6,13,17,22}); 8 emotions; one clip at a time; "
                             "TESS: the model trained on all of RAVDESS, never heard TESS (8-way model, 7 emotions)",
                 "recipes": {}, "fusions": {}, **library_note()}
    for name, m in members.items():
        r = {"clean": _scores(y, m["proba"]["clean"], labels, folds)}
        for g in GAINS:
            if g in m["proba"]:
                r[g] = _scores(y, m["proba"][g], labels, folds)
        if "tess" in m:
            r["tess"] = _scores(yt, m["tess"], labels)
        out["recipes"][name] = r
    for n in (2, 3):
        for combo in itertools.combinations([k for k in members if k != "mlp" and k != "smile"], n):
            if len({k.split("+")[0] for k in combo}) < n:  # one recipe of each kind per fusion
                continue
            proba = np.mean([members[k]["proba"]["clean"] for k in combo], axis=0)
            entry = {"clean": _scores(y, proba, labels, folds)}
            if all("tess" in members[k] for k in combo):
                entry["tess"] = _scores(yt, np.mean([members[k]["tess"] for k in combo], axis=0), labels)
            out["fusions"][" + ".join(combo)] = entry
    out["seconds"] = round(time.time() - started)
    save_json(args.out, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
