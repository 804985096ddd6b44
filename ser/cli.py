"""The command line: ``python train.py <command>`` (train, evaluate, save, predict, Hub transfer).

Heavy imports happen inside the handlers, so ``--help`` is instant and the MLP path never
imports TensorFlow.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]

log = logging.getLogger("ser")


def _data_default() -> str | None:
    from .corpora import default_data_dir

    d = default_data_dir()
    return str(d) if d else None


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=_data_default(),
                   help="corpus folder (RAVDESS/TESS/EMO-DB in their public layout or with manifest.csv, "
                        "a folder per emotion) or a CSV with path,emotion,speaker; default $SER_DATA_DIR, "
                        "else ../shared/data/ravdess (default: %(default)s)")
    p.add_argument("--extra-data", nargs="*", default=[], metavar="DIR",
                   help="more corpora trained on together with --data (speakers stay distinct)")
    p.add_argument("--speakers", nargs="*", default=None, metavar="ID",
                   help="use only these speakers (e.g. ravdess_01 ravdess_02); handy for quick runs")
    p.add_argument("--keep-extra", action="store_true",
                   help="keep labels outside the 8 canonical emotions (EMO-DB boredom); dropped by default")
    p.add_argument("--models-dir", default=None,
                   help="where to save (default $SER_MODELS_DIR or ./models)")
    p.add_argument("--no-save", action="store_true", help="evaluate only; do not save a new version")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=-1, help="parallel workers for features/search (-1: all cores)")
    _add_scheduler_arg(p)


def _add_scheduler_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the parallel work (feature extraction, search, prediction) on a Dask cluster, "
                        "e.g. tcp://host:8786; default: a local process pool (see ser/cluster.py for what "
                        "each worker needs)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train.py",
        description="Train, evaluate, save and share speech-emotion models (ser).",
        epilog="Every training run reports two protocols: speaker-independent (folds by speaker) and the "
               "seed's stratified 75/25 clip split. Example: python train.py mlp --data ../shared/data/ravdess",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("mlp", help="handcrafted features + StandardScaler + MLP with grouped search",
                       description="Train the MLP on handcrafted features, evaluate both protocols, save.")
    _add_data_args(p)
    p.add_argument("--no-search", action="store_true",
                   help="skip the hyperparameter search; use --hidden/--alpha/--lr/--batch-size")
    p.add_argument("--n-iter", type=int, default=8,
                   help="candidates of the randomized grouped search (default: %(default)s)")
    p.add_argument("--hidden", type=int, nargs="+", default=None, metavar="N",
                   help="hidden layer sizes without search, e.g. --hidden 256 128")
    p.add_argument("--alpha", type=float, default=None, help="L2 penalty without search")
    p.add_argument("--lr", type=float, default=None, help="initial learning rate without search")
    p.add_argument("--batch-size", type=int, default=None, help="mini-batch size without search")
    p.add_argument("--no-augment", action="store_true",
                   help="train without the augmented copies (pitch +2, stretch 1.1x, noise 20 dB)")
    p.add_argument("--no-importance", action="store_true", help="skip permutation importance")
    p.set_defaults(handler=_cmd_mlp)

    for kind, helptext in (("cnn", "log-mel CNN (Keras, TensorFlow CPU)"),
                           ("ensemble", "MLP + CNN ensemble (trains both, then averages)")):
        p = sub.add_parser(kind, help=helptext, description=f"Train the {helptext}, evaluate both protocols, save.")
        _add_data_args(p)
        p.add_argument("--epochs", type=int, default=None, help="maximum epochs (early stopping decides)")
        p.add_argument("--batch-size", type=int, default=None, help="mini-batch size")
        p.add_argument("--no-augment", action="store_true",
                       help="train without the augmented copies (pitch +2, stretch 1.1x, noise 20 dB)")
        if kind == "ensemble":
            p.add_argument("--cnn", default=None, metavar="DIR",
                           help="reuse a saved CNN (models/cnn) and the out-of-fold predictions saved with it "
                                "instead of training one; the MLP is trained (and saved) as by `mlp`")
            p.add_argument("--mlp", default=None, metavar="DIR",
                           help="reuse a saved MLP (models/mlp) as the member; its out-of-fold predictions are "
                                "recomputed with the settings in its metadata (checked against its metrics)")
        p.set_defaults(handler=_cmd_deep, kind=kind)

    p = sub.add_parser("predict", help="predict the emotion of files, a folder or a CSV",
                       description="Predict emotions; one row per file; unreadable files get an error column.")
    p.add_argument("inputs", nargs="+", help="audio files, folders or a CSV with a path column")
    p.add_argument("--model", default="mlp", help="mlp, cnn, ensemble, or a model folder (default: %(default)s)")
    p.add_argument("--out", default=None,
                   help="append rows to this CSV; files already in it are skipped, so a rerun resumes "
                        "(default: CSV on stdout)")
    p.add_argument("--jobs", type=int, default=-1, help="worker processes (-1: all cores; default: %(default)s)")
    p.add_argument("--chunk", type=int, default=32, help="files per task (default: %(default)s)")
    p.add_argument("--retry-errors", action="store_true",
                   help="try again the files that have an error in --out (their old rows are removed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_scheduler_arg(p)
    p.set_defaults(handler=_cmd_predict)

    try:
        from .hub import add_cli
    except ImportError:
        pass
    else:
        add_cli(sub)
    return parser


def _load_clips(args) -> list:
    from .corpora import load_corpus
    from .errors import DataError

    if not args.data:
        raise DataError("No data folder: pass --data or set SER_DATA_DIR.")
    clips = []
    for root in [args.data, *args.extra_data]:
        clips += load_corpus(root, keep_extra=args.keep_extra)
    if args.speakers:
        wanted = set(args.speakers)
        clips = [c for c in clips if c.speaker in wanted or c.speaker.split("_", 1)[-1] in wanted]
        if not clips:
            raise DataError(f"No clips of speakers {sorted(wanted)} in {args.data}.")
    return clips


def _progress_printer():
    from tqdm.auto import tqdm

    bar = tqdm(total=100, unit="%", bar_format="{l_bar}{bar}| {elapsed} {postfix}", file=sys.stderr)

    def progress(fraction: float, message: str) -> None:
        bar.n = int(round(100 * fraction))
        bar.set_postfix_str(message)
        bar.refresh()
        if fraction >= 1.0:
            bar.close()

    return progress


def format_metrics_table(metadata: dict) -> str:
    """A table of both protocols' metrics as measured by this run."""
    rows = [f"{'protocol':<22}{'accuracy':>10}{'UAR':>8}{'macro F1':>10}{'n test':>8}"]
    for protocol, m in metadata.get("metrics", {}).items():
        rows.append(f"{protocol:<22}{m['accuracy']:>10.3f}{m['uar']:>8.3f}{m['macro_f1']:>10.3f}{m['n_test']:>8d}")
    return "\n".join(rows)


def _report(metadata: dict, saved: Path | None) -> None:
    print(format_metrics_table(metadata))
    si = metadata.get("metrics", {}).get("speaker_independent", {})
    for pair in si.get("error_analysis", [])[:3]:
        print(f"most confused (speaker-independent): {pair['pair'][0]} <-> {pair['pair'][1]}: {pair['count']} clips")
    imp = metadata.get("feature_importance", {}).get("speaker_independent")
    if imp:
        top = ", ".join(f"{k} {v:+.3f}" for k, v in list(imp.items())[:4])
        print(f"feature families by permutation importance (accuracy drop): {top}")
    print(f"saved: {saved}" if saved else "not saved (--no-save)")


def _models_root(args) -> Path:
    from .recognizer import models_dir

    return Path(args.models_dir) if args.models_dir else models_dir()


def _cmd_mlp(args) -> int:
    from .augment import VARIANTS
    from .training import train_mlp

    clips = _load_clips(args)
    params = {k: v for k, v in (("hidden_layer_sizes", args.hidden), ("alpha", args.alpha),
                                ("learning_rate_init", args.lr), ("batch_size", args.batch_size))
              if v is not None}
    rec, report = train_mlp(clips, search=not args.no_search, n_iter=args.n_iter, params=params,
                            variants=() if args.no_augment else VARIANTS,
                            importance=not args.no_importance, seed=args.seed, n_jobs=args.jobs,
                            progress=_progress_printer(), data_root=args.data)
    saved = None if args.no_save else rec.save_pretrained(_models_root(args) / "mlp")
    _report(rec.metadata, saved)
    return 0


def _cmd_deep(args) -> int:
    from . import cnn

    return cnn.cli_train(args, clips=_load_clips(args), models_root=_models_root(args),
                         progress=_progress_printer(), report=_report)


def _cmd_predict(args) -> int:
    from .batch import predict_many

    return predict_many(args.inputs, model=args.model, out=args.out, n_jobs=args.jobs, chunk=args.chunk,
                        scheduler=args.scheduler, retry_errors=args.retry_errors, progress=not args.no_progress)


def main(argv: list[str] | None = None) -> int:
    from .errors import SerError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        if getattr(args, "scheduler", None) and args.command != "predict":
            from .cluster import parallel_context

            with parallel_context(args.scheduler):  # joblib work (features, search) runs on the cluster
                return int(args.handler(args) or 0)
        return int(args.handler(args) or 0)
    except SerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the previously saved model is untouched", file=sys.stderr)
        return 130
