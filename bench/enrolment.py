"""Speaker enrolment ("adapt to my voice", issue 15): what k unlabelled clips of a speaker gain →
``reports/enrolment.json``.

Protocol, per model kind (``--kinds``; the shipped recipe is ``smile``, openSMILE ComParE + eGeMAPS of
the level-normalised clip → StandardScaler + logistic regression, C = 0.01 fixed: the penalty is flat
between 0.003 and 0.03 on these folds):

* **RAVDESS, EmoBox's 6 folds of 4 actors** (8 emotions): per fold the unadapted model and, per draw,
  the adaptation heads of :data:`ser.training.pipeline.ADAPTATION_RECIPE` are fitted on the 20
  training actors (each standardised by ``k_head`` random clips of its own, seeded by the draw); each
  test actor enrols ``k`` random clips of its own (``k`` = 4, 8, 16, 32; seeded by the draw, never
  labelled), which are then **never scored**; its other clips are predicted through each head (``z``,
  ``mean``) and as the shipped model serves a profile of ``k`` clips (``served``: the z head from 8
  clips, below that the blend of the unadapted model and both heads, each with the temperature fitted
  on its own training side). The unadapted model is scored on the same clips (``base``) and on all
  clips (``k = 0``). 3 draws; UAR and accuracy pooled over the folds of a draw, then mean ± std over draws.
* **Neutral-only enrolment**: the same, the ``k`` enrolment clips drawn among the speaker's neutral
  clips (RAVDESS has 4 per actor, so k = 4 only; TESS has 200 per speaker).
* **RAVDESS → TESS**: trained on every RAVDESS actor on the 7 emotions both corpora share, tested
  on TESS's 2 speakers, each enrolling k random (or neutral) clips of its own.
* **Ensembles** (RAVDESS): the adapted model's probabilities averaged with the bundled CNN's (and
  MLP's, when saved) out-of-fold probabilities (``models/<kind>/oof_predictions.npz``: raw, each clip
  from a model that never heard its speaker), as an ensemble with those members serves a profile
  (members that cannot adapt are used unadapted); ``smile + cnn`` is the bundled ensemble's recipe.
* **Time**: enrolment of 16 clips (files: decoding + features) and one prediction with and without
  a profile (median over clips, the real :meth:`ser.models.base.Recognizer.predict` path).

Every fit goes through the library's trainers (:class:`ser.training.smile.SmileTrainer`,
:class:`ser.training.mlp.MLPTrainer`, their ``enrolment=`` mode); features come from the cache.
Usage::

    nice -n 15 python -m bench.enrolment                      # smile, about 20 min on one core
    python -m bench.enrolment --kinds smile mlp                # also the MLP's handcrafted features
    python -m bench.enrolment --actors 8 --draws 1 --no-tess --out smoke.json   # a quick smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from ser import settings
from ser.audio.corpora import Clip
from ser.features.handcrafted import FeatureConfig, extract_corpus
from ser.features.smile import SmileConfig
from ser.models.base import load_oof
from ser.models.mlp import MLPRecognizer
from ser.models.smile import DEFAULT_C, SmileRecognizer
from ser.models.speaker import MODEL_PART, Adaptation, blend, enrolment_draw, standardize_by_enrolment
from ser.training.crosscorpus import cross_corpus
from ser.training.mlp import MLPTrainer
from ser.training.pipeline import ADAPTATION_RECIPE
from ser.training.protocols import protocol_splits
from ser.training.smile import LEVEL_DB, SmileTrainer, smile_corpus

from .studies import first_actors, library_note, load_clips, log, save_json

KS = (4, 8, 16, 32)
DRAWS = 3
#: Offset of the test speakers' draw seeds (the training speakers' heads use the draw number itself).
TEST_SEED = 1000
KINDS = {"smile": (SmileTrainer, SmileRecognizer, {"C": DEFAULT_C}), "mlp": (MLPTrainer, MLPRecognizer, {})}


def kind_features(kind: str, clips: Sequence[Clip], jobs: int):
    """``(X [n, 1, d], feature config)`` of the clips for a kind, from the feature cache."""
    paths = [c.path for c in clips]
    if kind == "smile":
        config = SmileConfig(level_db=LEVEL_DB)
        return smile_corpus(paths, config=config, n_jobs=jobs)[0], config
    config = FeatureConfig()
    return extract_corpus(paths, config=config, n_jobs=jobs, progress=False)[0], config


def _scores(y: np.ndarray, pred: np.ndarray) -> dict:
    return {"uar": float(balanced_accuracy_score(y, pred)), "accuracy": float(accuracy_score(y, pred))}


def _summary(per_draw: list[dict]) -> dict:
    """Mean and std over draws of each score (and the clips scored)."""
    out = {}
    for key in ("uar", "accuracy", "base_uar", "base_accuracy"):
        values = [d[key] for d in per_draw]
        out[key] = float(np.mean(values))
        out[f"{key}_std"] = float(np.std(values))
    out["uar_per_draw"] = [round(d["uar"], 4) for d in per_draw]
    out["n_scored"] = int(np.mean([d["n_scored"] for d in per_draw]))
    out["draws"] = len(per_draw)
    return out


def evaluate_enrolment(kind: str, X: np.ndarray, clips: Sequence[Clip], labels: Sequence[str], splits, *,
                       config, ks: Sequence[int], neutral_ks: Sequence[int], draws: int,
                       extra: dict[str, np.ndarray] | None = None) -> tuple[dict, dict]:
    """UAR and accuracy against enrolment size for one protocol (``splits``: (train, test) pairs).

    ``extra``: ``{name: raw probabilities [len(clips), len(labels)]}`` of other members (out-of-fold)
    to average with this kind's probabilities as an ensemble would. Returns ``(results, models)``:
    ``models`` holds the last fold's fits (for timing).
    """
    trainer_class, _, params = KINDS[kind]
    labels = list(labels)
    y = np.array([labels.index(c.emotion) for c in clips])
    speakers = np.array([c.speaker for c in clips])
    neutral = np.array([c.emotion == "neutral" for c in clips])
    base_trainer = trainer_class(X, clips, labels, config=config)
    base_P = np.full((len(clips), len(labels)), np.nan)
    base_T = np.full(len(clips), np.nan)  # the temperature of the model that tested each clip
    # (enrol, k, method, draw) -> [(rows, P)] over folds
    parts: dict[tuple, list] = {}
    methods = [e.method for e in ADAPTATION_RECIPE["heads"]]
    models: dict = {}
    for f, (train, test) in enumerate(splits):
        t0 = time.time()
        base = base_trainer.fit(train, params)
        base_P[test] = base_trainer.proba(base, test)
        base_T[test] = base_trainer.temperature(train, params)[0]
        for d in range(draws):
            heads = {}
            for enrolment in ADAPTATION_RECIPE["heads"]:
                t = trainer_class(X, clips, labels, config=config, enrolment=enrolment, seed=d)
                heads[enrolment.method] = (t, t.adapted_head(train, params))
            adaptation = Adaptation({m: h for m, (_, h) in heads.items()},
                                    z_from_clips=ADAPTATION_RECIPE["z_from_clips"])
            for enrol, sizes in (("random", ks), ("neutral", neutral_ks)):
                pool = test if enrol == "random" else test[neutral[test]]
                for k in sizes:
                    if min(np.bincount(np.unique(speakers[pool], return_inverse=True)[1])) < k:
                        continue  # a test speaker has fewer candidate clips than k
                    draw = enrolment_draw(speakers[pool], k, seed=TEST_SEED + d)
                    enrolled = np.concatenate([pool[v] for v in draw.values()])
                    scored = np.setdiff1d(test, enrolled)
                    rows = X[:, 0][scored]
                    # each scored clip's speaker statistics come from its own enrolment clips only
                    R = np.concatenate([rows, X[:, 0][enrolled]])
                    groups = np.concatenate([speakers[scored], speakers[enrolled]])
                    at = {s: len(scored) + np.flatnonzero(speakers[enrolled] == s) for s in draw}
                    P = {MODEL_PART: base_P[scored]}
                    for method in methods:
                        t, head = heads[method]
                        Z = standardize_by_enrolment(R, groups, at, method=head.enrolment.method,
                                                     floor=head.floor)[:len(scored)]
                        P[method] = t.proba(head, rows=Z)
                        parts.setdefault((enrol, k, method, d), []).append((scored, P[method]))
                    served = adaptation.parts_for(k)  # what the shipped model serves for k clips
                    temperature = {MODEL_PART: float(base_T[test[0]]),
                                   **{m: h.temperature for m, (_, h) in heads.items()}}
                    P_served = P[served[0]] if len(served) == 1 else blend([P[p] for p in served],
                                                                          [temperature[p] for p in served])
                    parts.setdefault((enrol, k, "served", d), []).append((scored, P_served))
        log(f"{kind} fold {f + 1}/{len(splits)}: {time.time() - t0:.0f} s")
        models = {"base": base, "heads": adaptation, "temperature": float(base_T[test[0]])}
    assert not np.isnan(base_P[np.concatenate([te for _, te in splits])]).any()
    tested = np.concatenate([te for _, te in splits])
    out: dict = {}
    for combo in _combos(kind, extra):
        def mix(P: np.ndarray, rows: np.ndarray, _combo=combo) -> np.ndarray:
            Ps = [P] + [extra[m][rows] for m in _combo[1:]]
            return sum(Ps) / len(Ps)

        name = "+".join(combo)
        res: dict = {"k0": {**_scores(y[tested], mix(base_P[tested], tested).argmax(1)), "n_scored": len(tested)}}
        for (enrol, k, method, d), fold_parts in sorted(parts.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][3])):
            if combo != (kind,) and (enrol != "random" or method != "served"):
                continue  # ensembles: the served head on random enrolment only
            rows = np.concatenate([r for r, _ in fold_parts])
            P = np.concatenate([p for _, p in fold_parts])
            s = _scores(y[rows], mix(P, rows).argmax(1))
            b = _scores(y[rows], mix(base_P[rows], rows).argmax(1))
            res.setdefault(enrol, {}).setdefault(str(k), {}).setdefault(method, []).append(
                {**s, "base_uar": b["uar"], "base_accuracy": b["accuracy"], "n_scored": len(rows)})
        for enrol in ("random", "neutral"):
            for k, by_method in res.get(enrol, {}).items():
                for method, per_draw in by_method.items():
                    by_method[method] = _summary(per_draw)
        out[name] = res
    return out, models


def _combos(kind: str, extra: dict | None) -> list[tuple[str, ...]]:
    combos = [(kind,)]
    if extra:
        combos += [(kind, *names) for names in (("cnn",), ("mlp",), ("mlp", "cnn")) if all(n in extra for n in names)]
    return combos


def bundled_oof(clips: Sequence[Clip], labels: Sequence[str], models: Path) -> dict[str, np.ndarray]:
    """The bundled CNN's (and MLP's, when it has them) speaker-independent out-of-fold raw
    probabilities of ``clips`` (``models/<kind>/oof_predictions.npz``); ``{}`` when missing."""
    out = {}
    for kind in ("cnn", "mlp"):
        try:
            oof = load_oof(models / kind / "oof_predictions.npz")["speaker_independent"]
        except (OSError, KeyError, ValueError):
            continue
        where = {cid: i for i, cid in enumerate(oof["clip_ids"])}
        if any(c.clip_id not in where for c in clips):
            log(f"the bundled {kind}'s out-of-fold predictions do not cover these clips; left out")
            continue
        rows = [where[c.clip_id] for c in clips]
        out[kind] = np.asarray(oof["proba"], dtype=np.float64)[rows][:, [list(oof["labels"]).index(lab) for lab in labels]]
    return out


def timing(kind: str, models: dict, clips: Sequence[Clip], labels: Sequence[str], config, *,
           n: int = 20, repeats: int = 3) -> dict:
    """Enrolment of 16 files and one prediction with / without a profile, through the real paths."""
    _, recognizer_class, _ = KINDS[kind]
    rec = recognizer_class(models["base"], features=config, labels=labels, adaptation=models["heads"],
                           temperature=models["temperature"])
    speakers = sorted({c.speaker for c in clips})
    enrol_s, profiles = [], []
    for r in range(repeats):
        files = [c.path for c in clips if c.speaker == speakers[r % len(speakers)]][:16]
        t = time.perf_counter()
        profiles.append(rec.enroll(files))
        enrol_s.append(time.perf_counter() - t)
    profile = profiles[0]
    test = [c.path for c in clips if c.speaker == speakers[0]][16:16 + n]
    rec.predict(test[0])
    rec.predict(test[0], speaker=profile)  # first calls pay one-off costs
    plain, adapted = [], []
    for path in test:
        for target, kwargs in ((plain, {}), (adapted, {"speaker": profile})):
            t = time.perf_counter()
            rec.predict(path, **kwargs)
            target.append(time.perf_counter() - t)
    diffs = [a - p for a, p in zip(adapted, plain)]
    y = rec.load(test[0])
    feats_only = []
    for _ in range(n):
        t = time.perf_counter()
        rec.features_of(y)
        feats_only.append(time.perf_counter() - t)
    X = np.stack([rec.features_of(y)])
    head = models["heads"].heads["z"]
    stats = profile.stats(rec.space)
    t = time.perf_counter()
    for _ in range(200):
        rec.raw_proba_from_features(head.rows(X, stats), pipeline=head.pipeline)
    adapt_only = (time.perf_counter() - t) / 200
    return {
        "enrol_16_files_s": {"median": statistics.median(enrol_s), "runs": [round(s, 3) for s in enrol_s]},
        "predict_s": {"without_profile_median": statistics.median(plain),
                      "with_profile_median": statistics.median(adapted),
                      "difference_median": statistics.median(diffs), "clips": len(test)},
        "features_of_one_clip_s": statistics.median(feats_only),
        "standardise_and_head_s": adapt_only,
        "profile_json_bytes": len(profile.to_json()),
        "note": "one process on 2 shared cores under nice; files decoded each time; the difference with a "
                "profile is the standardisation and the adapted head (the features are computed once either way)",
    }


def run_kind(kind: str, args, ravdess: list[Clip], tess: list[Clip]) -> dict:
    ks, draws = tuple(args.ks), args.draws
    log(f"{kind}: features of {len(ravdess) + len(tess)} clips")
    X, config = kind_features(kind, ravdess + tess, args.jobs)
    XR = X[:len(ravdess)]
    labels = [e for e in ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
              if any(c.emotion == e for c in ravdess)]
    splits = protocol_splits(ravdess, "speaker_independent")
    extra = bundled_oof(ravdess, labels, Path(args.models)) if kind == "smile" and not args.no_ensembles else {}
    log(f"{kind}: RAVDESS, {len(splits)} folds x {draws} draws, k = {ks}")
    within, models = evaluate_enrolment(kind, XR, ravdess, labels, splits, config=config, ks=ks, neutral_ks=(4,),
                                        draws=draws, extra=extra)
    out = {"features": config.to_dict(), "params": KINDS[kind][2],
           "ravdess": {"labels": labels, "protocol": "EmoBox RAVDESS folds (6 x 4 test actors), 8 emotions",
                       "results": within}}
    if tess:
        split = cross_corpus(ravdess + tess, train="ravdess", test="tess")
        log(f"{kind}: RAVDESS → TESS ({len(split.labels)} emotions)")
        cross, _ = evaluate_enrolment(kind, X[split.index], split.clips, split.labels, split.splits, config=config,
                                      ks=ks, neutral_ks=ks, draws=draws)
        out["ravdess_to_tess"] = {"labels": split.labels, "protocol": split.description, "results": cross}
    if not args.no_timing:
        log(f"{kind}: timing")
        out["timing"] = timing(kind, models, ravdess, labels, config)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinds", nargs="+", choices=sorted(KINDS), default=["smile"])
    ap.add_argument("--ks", nargs="+", type=int, default=list(KS), help="enrolment sizes (default: %(default)s)")
    ap.add_argument("--draws", type=int, default=DRAWS, help="random draws of enrolment clips (default: %(default)s)")
    ap.add_argument("--actors", type=int, default=None, help="only the first N RAVDESS actors (smoke runs)")
    ap.add_argument("--no-tess", action="store_true", help="skip RAVDESS → TESS")
    ap.add_argument("--no-ensembles", action="store_true", help="skip the ensembles with the bundled members")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--models", default=str(settings.models_dir()), help="the bundled models (default: %(default)s)")
    ap.add_argument("--jobs", type=int, default=1, help="feature workers for a cold cache (default: %(default)s)")
    ap.add_argument("--out", default="enrolment.json", help="report name under the reports folder")
    args = ap.parse_args(argv)
    started = time.time()
    ravdess = load_clips(["ravdess"])
    if args.actors:
        ravdess = first_actors(ravdess, args.actors)
    tess = [] if args.no_tess else load_clips(["tess"])
    report = {
        "study": "speaker enrolment: k unlabelled clips of the test speaker, never scored",
        "recipe": {"heads": {e.method: {"k": e.k, "floor_fraction": e.floor_fraction}
                             for e in ADAPTATION_RECIPE["heads"]},
                   "z_from_clips": ADAPTATION_RECIPE["z_from_clips"]},
        "ks": list(args.ks), "draws": args.draws,
        "how": __doc__.split("Every fit")[0].split("Protocol, per model kind")[1].strip(),
        "kinds": {kind: run_kind(kind, args, ravdess, tess) for kind in args.kinds},
        **library_note(),
        "seconds": round(time.time() - started),
    }
    report.pop("mlp_params", None)
    report.pop("search", None)
    save_json(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
