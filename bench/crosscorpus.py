"""Cross-corpus and multi-corpus evaluation of the MLP (issue 8, part 1) → ``reports/crosscorpus.json``.

Protocols (:mod:`ser.crosscorpus`), each with and without per-speaker normalisation
(:mod:`ser.normalize`, transductive: statistics of each test speaker's unlabeled clips):

* ``within:<corpus>``: speaker-independent folds inside one corpus (the single-corpus baselines);
* ``<a>→<b>``: train on all of corpus a, test on all of corpus b, on their shared emotions;
* ``<a>(all emotions)→<b>``: the single-corpus model with all of a's emotions, tested on b
  (its extra labels, e.g. calm, count as errors): what the RAVDESS-only model does on TESS;
* ``multi:<a>+<b>``: one model on both corpora, tested speaker-independently on each.

MLP with fixed default parameters (no search), trained on clean clips plus the standard
augmentation (pitch +2, stretch 1.1, white noise 20 dB) of training clips only. Usage::

    python bench/crosscorpus.py [--corpora ravdess tess [emodb ...]] [--no-speaker-norm]

Another corpus (e.g. EMO-DB, German: an unseen language) only needs to be a folder under the data
root that :func:`ser.corpora.load_corpus` reads; every ordered pair is then evaluated.
"""

from __future__ import annotations

import argparse
import time

from studies import MLPStudy, features, library_note, load_clips, log, save_json  # noqa: I001

from ser.augment import ORIGINAL, VARIANTS
from ser.crosscorpus import corpus_pairs, cross_corpus, evaluate_split, multi_corpus, within_corpus


def _brief(m: dict) -> dict:
    keys = ("accuracy", "uar", "macro_f1", "n_test", "labels_present", "chance")
    return {k: m[k] for k in keys if k in m}


def run(split, X, *, speaker_norm: bool, cols) -> dict:
    study = MLPStudy(X[split.index], split.clips, split.labels, train_cols=cols, speaker_norm=speaker_norm)

    def fit_predict(train, test):
        return study.proba(study.fit(train), test, 0)

    started = time.time()
    res = evaluate_split(fit_predict, split)
    out = {"protocol": split.description, "labels": split.labels, "chance_uar": split.chance,
           "pooled": _brief(res.metrics),
           "by_corpus": {c: _brief(m) for c, m in res.metrics["by_corpus"].items()},
           "confusion": {c: m["confusion"] for c, m in res.metrics["by_corpus"].items()},
           "seconds": round(time.time() - started, 1)}
    log(f"{split.name:28s} norm={speaker_norm!s:5s} " + "  ".join(
        f"{c}: acc {m['accuracy']:.3f} uar {m['uar']:.3f}" for c, m in out["by_corpus"].items()))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", nargs="+", default=["ravdess", "tess"])
    ap.add_argument("--no-speaker-norm", action="store_true")
    ap.add_argument("--out", default="crosscorpus.json")
    args = ap.parse_args(argv)

    clips = load_clips(args.corpora)
    variants = (ORIGINAL, *VARIANTS)
    log(f"features of {len(clips)} clips x {len(variants)} variants")
    X = features(clips, variants)
    cols = list(range(len(variants)))
    norms = [False] if args.no_speaker_norm else [False, True]

    splits = [within_corpus(clips, c) for c in args.corpora]
    for a, b in corpus_pairs(clips):
        splits.append(cross_corpus(clips, train=a, test=b))
        emo_a = {c.emotion for c in clips if c.corpus == a}
        emo_b = {c.emotion for c in clips if c.corpus == b}
        if emo_a > emo_b:  # the single-corpus model as shipped, extra emotions and all
            splits.append(cross_corpus(clips, train=a, test=b, all_train_emotions=True))
    splits.append(multi_corpus(clips))

    results = {}
    for split in splits:
        for norm in norms:
            results.setdefault(split.name, {})["speaker_norm" if norm else "raw"] = run(
                split, X, speaker_norm=norm, cols=cols)
    save_json(args.out, {
        "study": "cross-corpus and multi-corpus evaluation (issue 8.1) with per-speaker normalisation (8.3)",
        "corpora": args.corpora,
        "training": "clean clips + augmented copies (" + ", ".join(VARIANTS) + ") of training clips only",
        "speaker_norm": "per-speaker standardisation of features, statistics from each speaker's own clips "
                        "(all of that speaker's test clips, unlabeled: transductive); training rows normalised "
                        "per speaker and augmentation variant",
        "chance": "chance_uar = 1 / number of emotions the model predicts (uniform guessing); "
                  "by_corpus.*.chance.majority = accuracy of always answering the most frequent test emotion",
        **library_note(),
        "results": results,
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
