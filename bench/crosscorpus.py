"""Cross-corpus and multi-corpus evaluation of the MLP (issue 8, part 1) → ``reports/crosscorpus.json``.

Protocols (:mod:`ser.training.crosscorpus`), each with and without per-speaker normalisation
(:mod:`ser.models.speaker`, transductive: statistics of each test speaker's unlabeled clips):

* ``within:<corpus>``: speaker-independent folds inside one corpus (the single-corpus baselines);
* ``<a>→<b>``: train on all of corpus a, test on all of corpus b, on their shared emotions;
* ``<a>(all emotions)→<b>``: the single-corpus model with all of a's emotions, tested on b
  (its extra labels, e.g. calm, count as errors): what the RAVDESS-only model does on TESS;
* ``multi:<a>+<b>``: one model on both corpora, tested speaker-independently on each.

MLP with fixed default parameters (no search), trained on clean clips plus the standard
augmentation (pitch +2, stretch 1.1, white noise 20 dB) of training clips only. ``--model cnn``
runs the same protocols with the CNN (:data:`ser.training.cnn.DEFAULT_PARAMS`, log-mel images, same
augmentation; no speaker norm; multi-corpus only with ``--multi``, ~1 h on 2 cores) into
``reports/crosscorpus_cnn.json``. ``--bundled`` instead tests the shipped models of ``models/``
(trained on all of RAVDESS, every emotion) on every other corpus through the real prediction path
(:meth:`ser.models.base.Recognizer.predict_proba` on each file) into ``reports/crosscorpus_bundled.json``.
Usage::

    python -m bench.crosscorpus [--corpora ravdess tess [emodb ...]] [--no-speaker-norm]
    python -m bench.crosscorpus --model cnn [--multi]
    python -m bench.crosscorpus --bundled
    python -m bench.crosscorpus --every 10 --only 'ravdess→tess' --out smoke.json   # a quick smoke run

Another corpus (e.g. EMO-DB, German: an unseen language) only needs to be a folder under the data
root (:func:`ser.settings.data_root`) that :func:`ser.audio.corpora.load_corpus` reads; every ordered
pair is then evaluated. Every fit goes through the library's training
(:class:`ser.training.mlp.MLPTrainer`, :class:`ser.training.cnn.CNNTrainer`).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


from ser import settings
from ser.audio.augment import ORIGINAL, VARIANTS
from ser.models.base import Recognizer
from ser.reports import MODEL_ORDER
from ser.training.cnn import DEFAULT_PARAMS as CNN_PARAMS
from ser.training.cnn import CNNTrainer
from ser.training.crosscorpus import corpus_pairs, cross_corpus, evaluate_split, multi_corpus, within_corpus
from ser.training.mlp import MLPTrainer

from .studies import features, library_note, load_clips, log, logmel, release_keras, save_json


def _brief(m: dict) -> dict:
    keys = ("accuracy", "uar", "macro_f1", "n_test", "labels_present", "chance")
    return {k: m[k] for k in keys if k in m}


def run(split, X, *, speaker_norm: bool, cols, hashes=None, params: dict | None = None) -> dict:
    """One protocol with the MLP (``X``: features) or the CNN (``X``: log-mel images, ``hashes`` given)."""
    histories: list[dict] = []
    if hashes is None:
        mlp = MLPTrainer(X[split.index], split.clips, split.labels, train_cols=cols, speaker_norm=speaker_norm)

        def fit_predict(train, test):
            return mlp.proba(mlp.fit(train), test)
    else:
        cnn = CNNTrainer([X[i] for i in split.index], split.clips, split.labels, train_cols=cols,
                         groups=[hashes[i] for i in split.index], params=params)

        def fit_predict(train, test):
            fitted = cnn.fit(train)
            histories.append({k: fitted.history[k] for k in ("epochs", "best_epoch", "seconds_per_epoch")})
            p = cnn.proba(fitted.model, test)
            del fitted
            release_keras()
            return p

    started = time.time()
    res = evaluate_split(fit_predict, split)
    out = {"protocol": split.description, "labels": split.labels, "chance_uar": split.chance,
           "pooled": _brief(res.metrics),
           "by_corpus": {c: _brief(m) for c, m in res.metrics["by_corpus"].items()},
           "confusion": {c: m["confusion"] for c, m in res.metrics["by_corpus"].items()},
           "seconds": round(time.time() - started, 1)}
    if hashes is not None:
        out["histories"] = histories
    log(f"{split.name:28s} norm={speaker_norm!s:5s} " + "  ".join(
        f"{c}: acc {m['accuracy']:.3f} uar {m['uar']:.3f}" for c, m in out["by_corpus"].items()))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", nargs="+", default=["ravdess", "tess"])
    ap.add_argument("--no-speaker-norm", action="store_true")
    ap.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    ap.add_argument("--multi", action="store_true", help="with --model cnn: also the multi-corpus folds")
    ap.add_argument("--bundled", action="store_true", help="test the shipped models of --models on other corpora")
    ap.add_argument("--models", default=str(settings.models_dir()))
    ap.add_argument("--only", nargs="+", metavar="PROTOCOL",
                    help="run only these protocols (e.g. 'ravdess→tess' 'tess→ravdess' 'within:tess')")
    ap.add_argument("--epochs", type=int, help="with --model cnn: maximum epochs (smoke runs; default the recipe's)")
    ap.add_argument("--out", help="report file name (default crosscorpus[_cnn|_bundled].json)")
    ap.add_argument("--every", type=int, default=1, metavar="K",
                    help="keep every K-th clip of each corpus (smoke runs; default: all)")
    args = ap.parse_args(argv)

    clips = [c for name in args.corpora for c in load_clips([name])[::args.every]]
    if args.bundled:
        return bundled(clips, args)
    variants = (ORIGINAL, *VARIANTS)
    cols = list(range(len(variants)))
    hashes = None
    if args.model == "cnn":
        os.environ.setdefault("SER_TF_THREADS", "2")
        log(f"log-mel images of {len(clips)} clips x {len(variants)} variants")
        X, hashes = logmel(clips, variants)
    else:
        log(f"features of {len(clips)} clips x {len(variants)} variants")
        X = features(clips, variants)
    norms = [False] if args.no_speaker_norm or args.model == "cnn" else [False, True]

    splits = [within_corpus(clips, c) for c in args.corpora]
    for a, b in corpus_pairs(clips):
        splits.append(cross_corpus(clips, train=a, test=b))
        emo_a = {c.emotion for c in clips if c.corpus == a}
        emo_b = {c.emotion for c in clips if c.corpus == b}
        if emo_a > emo_b:  # the single-corpus model as shipped, extra emotions and all
            splits.append(cross_corpus(clips, train=a, test=b, all_train_emotions=True))
    if args.model == "mlp" or args.multi:
        splits.append(multi_corpus(clips))
    if args.model == "cnn":
        # within:ravdess is robustness_cnn.json's "standard" clean result (same recipe and folds)
        splits = [s for s in splits if s.name != "within:ravdess"]

    if args.only:  # in the order given
        by_name = {s.name: s for s in splits}
        splits = [by_name[name] for name in args.only if name in by_name]
    extra = {}
    if args.model == "cnn":
        note = library_note()
        extra = {"model": "cnn", "cnn_params": {**CNN_PARAMS, **({"epochs": args.epochs} if args.epochs else {})},
                 "libraries": note["libraries"], "date": note["date"],
                 "search": "none: ser.cnn.DEFAULT_PARAMS (the bundled CNN's recipe), seed 0; early stopping on 2 "
                           "speakers of the training side, or 10 % of its clips when it has fewer than 4 speakers",
                 "left_out": "within:ravdess (see robustness_cnn.json, standard, clean)" +
                             ("" if args.multi else "; multi-corpus (run with --multi)") +
                             ("; only the protocols under results" if args.only else "")}
    out_name = args.out or ("crosscorpus_cnn.json" if args.model == "cnn" else "crosscorpus.json")
    results = {}
    if args.only:  # adding protocols to an earlier run's report
        earlier = settings.reports_dir() / out_name
        if earlier.is_file():
            results = json.loads(earlier.read_text()).get("results", {})
            log(f"keeping {sorted(results)} of {out_name}")
    for split in splits:
        for norm in norms:
            results.setdefault(split.name, {})["speaker_norm" if norm else "raw"] = run(
                split, X, speaker_norm=norm, cols=cols, hashes=hashes,
                params={"epochs": args.epochs} if args.epochs else None)
        # written after every protocol: a long run stopped early keeps what it measured
        save_json(out_name, {
            "study": "cross-corpus and multi-corpus evaluation (issue 8.1)" +
                     (" with per-speaker normalisation (8.3)" if len(norms) > 1 else ""),
            "corpora": args.corpora,
            "training": "clean clips + augmented copies (" + ", ".join(VARIANTS) + ") of training clips only",
            "speaker_norm": "per-speaker standardisation of features, statistics from each speaker's own clips "
                            "(all of that speaker's test clips, unlabeled: transductive); training rows normalised "
                            "per speaker and augmentation variant" if len(norms) > 1 else "not used",
            "chance": "chance_uar = 1 / number of emotions the model predicts (uniform guessing); "
                      "by_corpus.*.chance.majority = accuracy of always answering the most frequent test emotion",
            **(extra or library_note()),
            "results": results,
            "complete": split is splits[-1],
            **({"smoke_run": f"every {args.every}th clip of each corpus"} if args.every > 1 else {}),
        })
    return 0


def bundled(clips, args) -> int:
    """The shipped models (trained on RAVDESS, every emotion) on each other corpus, file by file."""
    results, versions = {}, {}
    for kind in MODEL_ORDER:
        folder = Path(args.models) / kind
        if not (folder / "config.json").exists():
            continue
        rec = Recognizer.from_pretrained(folder)
        versions[kind] = rec.metadata.get("version")
        source = next(iter((rec.metadata.get("data") or {}).get("corpora") or ["ravdess"]))
        for test in sorted({c.corpus for c in clips} - {source}):
            split = cross_corpus(clips, train=source, test=test, all_train_emotions=True)
            order = [rec.labels.index(lab) for lab in split.labels]

            def fit_predict(train, test_idx, _rec=rec, _split=split, _order=order):
                started = time.time()
                p = _rec.predict_proba_batch([_rec.load(_split.clips[i].path) for i in test_idx])
                log(f"{_rec.__class__.__name__}: {len(test_idx)} clips in {time.time() - started:.0f} s")
                return p[:, _order]

            res = evaluate_split(fit_predict, split)
            results.setdefault(f"{source}(all emotions)→{test}", {})[kind] = {
                "protocol": split.description.replace(f"train on all {len(split.splits[0][0])} {source} clips",
                                                      f"the bundled {kind} model ({versions[kind]})"),
                "labels": split.labels, "chance_uar": split.chance, "pooled": _brief(res.metrics),
                "by_corpus": {c: _brief(m) for c, m in res.metrics["by_corpus"].items()},
                "confusion": {c: m["confusion"] for c, m in res.metrics["by_corpus"].items()}}
            m = res.metrics["by_corpus"][test]
            log(f"bundled {kind} → {test}: acc {m['accuracy']:.3f} uar {m['uar']:.3f}")
    note = library_note()
    save_json(args.out or "crosscorpus_bundled.json", {
        "study": "the bundled models on corpora they never heard (issue 8.1): real prediction path, file by file",
        "corpora": args.corpora, "versions": versions, "libraries": note["libraries"], "date": note["date"],
        "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
