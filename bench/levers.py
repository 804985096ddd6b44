"""A new voice (issue 14), the levers beyond ``bench.newvoice``: fitted fusion weights, more
speakers (RAVDESS + TESS), degradation augmentation, and the reverse cross-corpus direction
→ ``reports/levers.json``.

All on the openSMILE recipe of the bundled model (ComParE_2016 + eGeMAPSv02 of the level-normalised
clip, logistic regression with C = 0.01, through :class:`ser.training.smile.SmileTrainer`) and on
RAVDESS's EmoBox folds (8 emotions, one clip at a time, nothing about the test speaker):

``fusion``        the bundled CNN and openSMILE model's saved out-of-fold probabilities mixed with a
                  weight chosen on the *training* folds' out-of-fold rows of each test fold (grid
                  0, 0.05, ..., 1; arithmetic and geometric mean), beside the equal weights bundled.
                  The members' out-of-fold rows of the training folds come from the outer CV, so
                  their models saw the test fold's clips (never its labels in the weight choice).
``multicorpus``   all of TESS added to every training side: RAVDESS on its folds, and TESS leave one
                  speaker out (trained on RAVDESS + the other TESS speaker): a new speaker, not a new
                  corpus.
``augment``       degraded copies (``degraded1``, ``degraded2``: reverberation, noise, gain, telephone,
                  codecs) of the training clips only, alone and fused with the bundled CNN (equal weights,
                  its saved out-of-fold probabilities; on TESS the CNN trained on all of RAVDESS); tested
                  clean, telephone and white noise at 10 dB (the openSMILE model alone).
``tess→ravdess``  the reverse direction: trained on all of TESS, tested on all of RAVDESS.

    python -m bench.levers [--cnn models/cnn --smile models/smile] [--out levers.json]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from ser.features.smile import SmileConfig
from ser.models.base import Recognizer
from ser.models.smile import DEFAULT_C
from ser.training.ensemble import results_from_oof
from ser.training.smile import LEVEL_DB, SmileTrainer, smile_corpus

from .newvoice import _scores, ravdess_and_tess
from .studies import N_JOBS, library_note, log, save_json

TEST_COLUMNS = ("original", "telephone", "white10dB")
AUGMENT = ("degraded1", "degraded2")
GRID = np.round(np.linspace(0.0, 1.0, 21), 2)


def _oof(folder: str, clips, labels: list[str]) -> np.ndarray:
    """A saved model's speaker-independent out-of-fold probabilities, rows in ``clips`` order."""
    res = results_from_oof(Recognizer.from_pretrained(folder).oof, clips)["speaker_independent"]
    proba = np.zeros((len(clips), len(labels)))
    proba[res.test_index] = res.proba[:, [list(res.labels).index(lab) for lab in labels]]
    return proba


def _mix(a: np.ndarray, b: np.ndarray, w: float, how: str) -> np.ndarray:
    if how == "arithmetic":
        return w * a + (1 - w) * b
    return np.exp(w * np.log(a + 1e-12) + (1 - w) * np.log(b + 1e-12))


def _uar(y: np.ndarray, proba: np.ndarray) -> float:
    """UAR of the top answers (balanced accuracy: mean recall over the emotions ``y`` has)."""
    return float(balanced_accuracy_score(y, proba.argmax(axis=1)))


def fusion(cnn: np.ndarray, smile: np.ndarray, y: np.ndarray, labels, folds) -> dict:
    """Equal weights and, per test fold, the weight with the best UAR on the other folds."""
    out = {}
    for how in ("arithmetic", "geometric"):
        chosen, proba = [], np.zeros_like(cnn)
        for test in folds:
            train = np.setdiff1d(np.arange(len(y)), test)
            w = max(GRID, key=lambda g: (round(_uar(y[train], _mix(cnn[train], smile[train], g, how)), 6),
                                         -abs(g - 0.5)))
            chosen.append(float(w))
            proba[test] = _mix(cnn[test], smile[test], w, how)
        out[f"{how}, weight chosen on training folds"] = {"clean": _scores(y, proba, labels, folds),
                                                          "cnn_weight_per_fold": chosen}
        out[f"{how}, equal weights"] = {"clean": _scores(y, _mix(cnn, smile, 0.5, how), labels, folds)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cnn", default="models/cnn", help="a saved CNN trained on RAVDESS's EmoBox folds")
    ap.add_argument("--smile", default="models/smile", help="a saved openSMILE model trained on the same folds")
    ap.add_argument("--skip", nargs="*", default=(), choices=("fusion", "multicorpus", "augment", "reverse"))
    ap.add_argument("--out", default="levers.json")
    args = ap.parse_args(argv)
    started = time.time()
    rav, tess, labels, y, yt, folds = ravdess_and_tess()
    params = {"C": DEFAULT_C}
    config = SmileConfig(level_db=LEVEL_DB)
    out: dict = {"protocol": "RAVDESS, EmoBox's six speaker-independent folds; 8 emotions; one clip at a time; "
                             "openSMILE recipe of the bundled model with C = 0.01", "levers": {},
                 **library_note()}
    if "fusion" not in args.skip:
        out["levers"]["fusion"] = {"members": {k: Recognizer.from_pretrained(f).metadata.get("version")
                                               for k, f in (("cnn", args.cnn), ("smile", args.smile))},
                                   **fusion(_oof(args.cnn, rav, labels), _oof(args.smile, rav, labels), y, labels,
                                            folds)}
        log(f"fusion: {time.time() - started:.0f} s")
    X, _ = smile_corpus([c.path for c in rav], config=config, variants=TEST_COLUMNS + AUGMENT, n_jobs=N_JOBS)
    Xt, _ = smile_corpus([c.path for c in tess], config=config, n_jobs=N_JOBS)
    if "multicorpus" not in args.skip:
        t0 = time.time()
        both = SmileTrainer(np.concatenate([X[:, :1], Xt]), rav + tess, labels, config=config)
        n = len(rav)
        tess_rows = np.arange(n, n + len(tess))
        proba = np.zeros((n, len(labels)))
        for test in folds:
            proba[test] = both.proba(both.fit(np.concatenate([np.setdiff1d(np.arange(n), test), tess_rows]), params),
                                     test)
        speakers = np.array([c.speaker for c in tess])
        pt = np.zeros((len(tess), len(labels)))
        for s in np.unique(speakers):
            held = speakers == s
            pt[held] = both.proba(both.fit(np.concatenate([np.arange(n), tess_rows[~held]]), params), tess_rows[held])
        out["levers"]["multicorpus"] = {
            "ravdess": _scores(y, proba, labels, folds),
            "tess (leave one speaker out)": {**_scores(yt, pt, labels),
                                             "per_speaker_uar": {s: _uar(yt[speakers == s], pt[speakers == s])
                                                                 for s in np.unique(speakers).tolist()}}}
        log(f"multicorpus: {time.time() - t0:.0f} s")
    if "augment" not in args.skip:
        cnn_oof = cnn_tess = None
        if "fusion" not in args.skip:  # the CNN's raw probabilities: out of fold on RAVDESS, on TESS (never heard)
            cnn = Recognizer.from_pretrained(args.cnn)
            cnn_oof = _oof(args.cnn, rav, labels)
            order = [cnn.labels.index(lab) for lab in labels]
            cnn_tess = cnn.raw_proba_batch([cnn.load(c.path) for c in tess])[:, order]
        for name, cols in (("clean training", [0]), ("+ degraded copies", [0, 3, 4])):
            t0 = time.time()
            trainer = SmileTrainer(X, rav, labels, config=config, train_cols=cols)
            proba = {v: np.zeros((len(rav), len(labels))) for v in TEST_COLUMNS}
            for test in folds:
                model = trainer.fit(np.setdiff1d(np.arange(len(rav)), test), params)
                for col, v in enumerate(TEST_COLUMNS):
                    proba[v][test] = trainer.proba(model, test, col=col)
            tess_proba = trainer.proba(trainer.fit(np.arange(len(rav)), params), rows=Xt[:, 0])
            out["levers"].setdefault("augment", {})[name] = {
                **{v: _scores(y, p, labels, folds) for v, p in proba.items()}, "tess": _scores(yt, tess_proba, labels)}
            if cnn_oof is not None:  # the bundled ensemble's recipe with this openSMILE member, equal weights
                out["levers"]["augment"][name]["fusion with the CNN"] = {
                    "original": _scores(y, (cnn_oof + proba["original"]) / 2, labels, folds),
                    "tess": _scores(yt, (cnn_tess + tess_proba) / 2, labels)}
            log(f"augment {name}: {time.time() - t0:.0f} s")
    if "reverse" not in args.skip:
        trainer = SmileTrainer(Xt, tess, labels, config=config)
        proba = trainer.proba(trainer.fit(np.arange(len(tess)), params), rows=X[:, 0])
        out["levers"]["tess→ravdess"] = _scores(y, proba, labels)
    out["seconds"] = round(time.time() - started)
    save_json(args.out, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
