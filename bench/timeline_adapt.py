"""Timeline self-adaptation (issue 15): when does adapting a long recording to its own voice help?
→ ``reports/timeline_adapt.json``.

Protocol: RAVDESS, EmoBox's 6 folds of 4 actors. Per fold an openSMILE model is fitted on the 20
training actors with the shipped recipe (:class:`ser.training.smile.SmileTrainer`, C fixed at the
bundled default, temperature from out-of-fold predictions of the training side, the adaptation heads
of :data:`ser.training.pipeline.ADAPTATION_RECIPE` via :func:`~ser.training.pipeline.fit_adaptation`),
so no test actor is ever heard in training. For each test actor and draw, its 60 clips are put in a
random order and the first ``k`` of them (``k`` = 2, 4, 6, 8, 12, 16, 24, 32) are joined into one
recording with :data:`GAP_S` of silence between clips (so a recording of ``k`` clips is the start of
the one of 32). Each recording goes through the library's timeline
(:func:`ser.serving.timeline.adapted_timeline`: WebRTC VAD segments of at most 4 s, each trimmed and
predicted) twice: ``adapt="off"`` and ``adapt="self"`` (a profile of the recording's own segments,
one speaker assumed, transductive: no labels, every segment scored). A segment is scored against
the emotion of the clip its midpoint falls in. UAR over all segments of the 24 actors pooled per
draw, then mean ± std over draws, per ``k``.

``default_from_segments``: the fewest segments from which self-adaptation is the timeline's default
(:data:`ser.serving.timeline.SELF_ADAPT_FROM`): the smallest ``k`` from which the gain is positive in
every draw at that ``k`` and at every larger one, as the median segment count of those recordings,
never below :data:`ser.models.speaker.MIN_ENROL_CLIPS`; ``null`` when it never helps.

Usage::

    nice -n 10 python -m bench.timeline_adapt                  # about 15 min on one busy core
    python -m bench.timeline_adapt --actors 8 --draws 1 --out smoke.json
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from typing import Sequence

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from ser.audio.io import SAMPLE_RATE, load_audio
from ser.models.smile import DEFAULT_C, SmileRecognizer
from ser.models.speaker import MIN_ENROL_CLIPS
from ser.serving.timeline import adapted_timeline
from ser.training.pipeline import fit_adaptation
from ser.training.protocols import protocol_splits
from ser.training.smile import LEVEL_DB, SmileTrainer, smile_corpus
from ser.features.smile import SmileConfig

from .studies import first_actors, library_note, load_clips, log, save_json

KS = (2, 4, 6, 8, 12, 16, 24, 32)
DRAWS = 3
GAP_S = 0.5
SEED = 15


def memoised_features(rec: SmileRecognizer) -> dict:
    """Cache ``rec.features_of`` by the exact samples (this bench only, one thread): a segment's
    features are computed once for enrolment, the adapted and the unadapted pass, and the shorter
    recordings (the start of the longer ones)."""
    cache: dict = {}
    compute = rec.features_of

    def features_of(y: np.ndarray) -> np.ndarray:
        key = hashlib.sha1(np.ascontiguousarray(y, dtype=np.float32).tobytes()).hexdigest()
        if key not in cache:
            cache[key] = compute(y)
        return cache[key]

    rec.features_of = features_of
    return cache


def fold_model(X: np.ndarray, clips, labels: Sequence[str], train: np.ndarray, config: SmileConfig) -> SmileRecognizer:
    """The shipped recipe fitted on the training actors of one fold (calibrated, with adaptation heads)."""
    params = {"C": DEFAULT_C}
    base = SmileTrainer(X, clips, labels, config=config).calibrated(train, params)
    adaptation = fit_adaptation(SmileTrainer, X, clips, labels, train, params, config=config)
    return SmileRecognizer(base.pipeline, features=config, labels=list(labels), temperature=base.temperature,
                           adaptation=adaptation)


def recording(paths: Sequence[str], emotions: Sequence[str]) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """The clips joined with ``GAP_S`` of silence, untrimmed, and each clip's span and emotion."""
    parts, spans, t = [], [], 0.0
    gap = np.zeros(round(GAP_S * SAMPLE_RATE), np.float32)
    for path, emotion in zip(paths, emotions):
        y = load_audio(path, sr=SAMPLE_RATE, trim=False)
        spans.append((t, t + len(y) / SAMPLE_RATE, emotion))
        parts += [y, gap]
        t += (len(y) + len(gap)) / SAMPLE_RATE
    return np.concatenate(parts), spans


def truth(segments: Sequence[dict], spans) -> list[str | None]:
    """The emotion of the clip each segment's midpoint falls in (``None``: in a gap)."""
    out = []
    for s in segments:
        mid = (s["start"] + s["end"]) / 2
        out.append(next((e for a, b, e in spans if a <= mid <= b), None))
    return out


def run(args) -> dict:
    clips = load_clips(["ravdess"])
    if args.actors:
        clips = first_actors(clips, args.actors)
    labels = [e for e in ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
              if any(c.emotion == e for c in clips)]
    config = SmileConfig(level_db=LEVEL_DB)
    log(f"openSMILE functionals of {len(clips)} clips (cache)")
    X, _ = smile_corpus([c.path for c in clips], config=config, n_jobs=args.jobs)
    splits = protocol_splits(clips, "speaker_independent")
    ks = sorted(args.ks)
    # (k, mode, draw) -> [(true, predicted)]; (k, draw) -> segment counts; self-adaptation refusals
    pairs: dict[tuple, list] = {}
    counts: dict[int, list[int]] = {k: [] for k in ks}
    refused: dict[int, int] = {k: 0 for k in ks}
    fit_s = []
    for f, (train, test) in enumerate(splits):
        t0 = time.time()
        rec = fold_model(X, clips, labels, train, config)
        fit_s.append(time.time() - t0)
        memoised_features(rec)
        actors = sorted({clips[i].speaker for i in test})
        for actor in actors:
            own = [i for i in test if clips[i].speaker == actor]
            for d in range(args.draws):
                rng = np.random.default_rng([SEED, d, int(''.join(ch for ch in actor if ch.isdigit()) or 0)])
                order = [own[i] for i in rng.permutation(len(own))[:max(ks)]]
                for k in ks:
                    chosen = order[:k]
                    y, spans = recording([clips[i].path for i in chosen], [clips[i].emotion for i in chosen])
                    for mode in ("off", "self"):
                        segments, info = adapted_timeline(y, rec, sr=SAMPLE_RATE, adapt=mode)
                        if mode == "self":
                            counts[k].append(len(segments))
                            refused[k] += not info["adapted"]
                        for true, s in zip(truth(segments, spans), segments):
                            if true is not None:
                                pairs.setdefault((k, mode, d), []).append((true, s["emotion"]))
        log(f"fold {f + 1}/{len(splits)}: {time.time() - t0:.0f} s (fit {fit_s[-1]:.0f} s)")
    results = {}
    for k in ks:
        per_mode = {}
        for mode in ("off", "self"):
            uars = [balanced_accuracy_score(*zip(*pairs[(k, mode, d)])) for d in range(args.draws)
                    if pairs.get((k, mode, d))]
            per_mode[mode] = {"uar": float(np.mean(uars)), "uar_std": float(np.std(uars)),
                              "uar_per_draw": [round(u, 4) for u in uars],
                              "segments_scored": int(np.mean([len(pairs[(k, mode, d)]) for d in range(args.draws)]))}
        gains = [s - o for s, o in zip(per_mode["self"]["uar_per_draw"], per_mode["off"]["uar_per_draw"])]
        results[str(k)] = {**per_mode, "gain_per_draw": [round(g, 4) for g in gains],
                           "gain": float(np.mean(gains)),
                           "segments": {"median": float(statistics.median(counts[k])), "min": min(counts[k]),
                                        "max": max(counts[k])},
                           "not_adapted": refused[k], "recordings": len(counts[k])}
    helps = [k for i, k in enumerate(ks) if all(g > 0 for kk in ks[i:] for g in results[str(kk)]["gain_per_draw"])]
    default_from = (max(MIN_ENROL_CLIPS, int(np.ceil(results[str(helps[0])]["segments"]["median"])))
                    if helps else None)
    return {"results": results, "helps_from_clips": helps[0] if helps else None,
            "default_from_segments": default_from, "labels": labels, "fit_s_median": statistics.median(fit_s),
            "actors": len({c.speaker for c in clips}), "cost": cost(rec, clips, test)}


def cost(rec: SmileRecognizer, clips, test: np.ndarray, repeats: int = 3) -> dict:
    """Seconds of one timeline of a 32-clip recording without and with self-adaptation (no cache)."""
    fresh = SmileRecognizer(rec.pipeline, features=rec.features, labels=rec.labels, temperature=rec.temperature,
                            adaptation=rec.adaptation)
    chosen = list(test[:32])
    y, _ = recording([clips[i].path for i in chosen], [clips[i].emotion for i in chosen])
    out = {}
    for mode in ("off", "self"):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            segments, _ = adapted_timeline(y, fresh, sr=SAMPLE_RATE, adapt=mode)
            times.append(time.perf_counter() - t)
        out[mode] = statistics.median(times)
    return {"recording_s": round(len(y) / SAMPLE_RATE, 1), "segments": len(segments),
            "timeline_s_off": round(out["off"], 2), "timeline_s_self": round(out["self"], 2),
            "note": "one process on 2 shared cores under nice; median of 3"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ks", nargs="+", type=int, default=list(KS), help="clips per recording (default: %(default)s)")
    ap.add_argument("--draws", type=int, default=DRAWS, help="random orders per actor (default: %(default)s)")
    ap.add_argument("--actors", type=int, default=None, help="only the first N RAVDESS actors (smoke runs)")
    ap.add_argument("--jobs", type=int, default=1, help="feature workers for a cold cache (default: %(default)s)")
    ap.add_argument("--out", default="timeline_adapt.json", help="report name under the reports folder")
    args = ap.parse_args(argv)
    started = time.time()
    body = run(args)
    libraries = {k: v for k, v in library_note().items() if k not in ("mlp_params", "search")}  # no MLP here
    save_json(args.out, {
        "study": "timeline self-adaptation: a recording of k clips of one unseen actor, adapted to its own segments",
        "how": __doc__.split("Usage::")[0].split("Protocol: ")[1].strip(),
        "ks": sorted(args.ks), "draws": args.draws, "gap_s": GAP_S, **body, **libraries,
        "seconds": round(time.time() - started)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
