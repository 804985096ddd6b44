"""The command line, ``ser`` (also ``python train.py``): train, evaluate, save, predict, share.

All argument parsing and printing of ``ser`` lives here; the library functions it calls return
values and report progress through callbacks.

    ser train mlp|cnn|ensemble --data DIR     train, evaluate both protocols, save a new version
    ser predict <files, folders or CSV>        one row per file, resumable CSV
                                               (--profile me.json, --speaker-column speaker: adapted)
    ser enroll <clips of one speaker> --out me.json   a speaker profile ("adapt to my voice")
    ser push models/mlp --repo you/ser-mlp     share on the Hugging Face Hub, with a model card
    ser pull you/ser-mlp --revision v...       download and verify
    ser report                                 regenerate the README's measured tables

``python train.py mlp ...`` (the seed's entry point) is the same as ``ser train mlp ...``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path

from tqdm.auto import tqdm

from . import settings
from .audio.augment import VARIANTS
from .audio.corpora import load_corpus
from .audio.degrade import TEST_CONDITIONS, TRAINING_VARIANTS
from .audio.level import TARGET_DBFS
from .cluster import parallel_context
from .errors import DataError, ModelError, ParameterError, SerError
from .features.handcrafted import FeatureConfig
from .features.smile import SmileConfig
from .hub.card import refresh_card
from .hub.transfer import pull, push
from .models.registry import get_recognizer
from .models.smile import DEFAULT_C
from .models.speaker import MIN_ENROL_CLIPS, SpeakerProfile
from .reports import MODEL_ORDER, protocol_table, update_readme
from .serving.batch import ENROL_CLIPS, CsvRun, expand_inputs, predict_to_csv
from .training.cnn import train_cnn
from .training.ensemble import MEMBERS as ENSEMBLE_MEMBERS
from .training.ensemble import train_all
from .training.mlp import train_mlp
from .training.smile import train_smile

__all__ = ["main", "build_parser"]

log = logging.getLogger("ser")
#: The seed's commands, still accepted without ``train``: ``python train.py mlp --data ...``.
TRAIN_KINDS = ("mlp", "cnn", "smile", "ensemble")


def _add_data_args(p: argparse.ArgumentParser) -> None:
    default = settings.default_data_dir()
    p.add_argument("--data", default=str(default) if default else None,
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
                   help="where to save (default $SER_MODELS_DIR, else the bundled models/)")
    p.add_argument("--no-save", action="store_true", help="evaluate only; do not save a new version")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=-1, help="parallel workers for features/search (-1: all cores)")
    _add_scheduler_arg(p)


def _add_robustness_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--degraded-copies", action="store_true",
                   help="the robust recipe: also two randomly degraded copies of each training clip (reverberation, "
                        "noise, gain, telephone, codecs), robust to those at some cost on clean studio audio")
    p.add_argument("--test-conditions", nargs="*", default=[], choices=TEST_CONDITIONS, metavar="NAME",
                   help="also test the speaker-independent folds on degraded audio, e.g. telephone white10dB "
                        "(metadata 'robustness'; an ensemble of members tested alike gets it too)")


def _training_copies(args, standard: tuple[str, ...]) -> tuple[str, ...]:
    """The copies of each training clip a run adds: ``standard`` augmentation (unless ``--no-augment``),
    then the robust recipe's degraded copies (``--degraded-copies``)."""
    return ((() if getattr(args, "no_augment", False) else standard)
            + (TRAINING_VARIANTS if args.degraded_copies else ()))


def _add_scheduler_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the parallel work (feature extraction, search, prediction) on a Dask cluster, "
                        "e.g. tcp://host:8786; default: a local process pool (see ser/cluster.py for what "
                        "each worker needs)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ser",
        description="Train, evaluate, save and share speech-emotion models (ser).",
        epilog="Every training run reports two protocols: speaker-independent (folds by speaker) and the "
               "seed's stratified 75/25 clip split. Example: ser train mlp --data ../shared/data/ravdess",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = sub.add_parser("train", help="train a model, evaluate both protocols, save a new version",
                           description="Train a model on a corpus, evaluate it under both protocols, save it.")
    kinds = train.add_subparsers(dest="kind", required=True, metavar="KIND")

    p = kinds.add_parser("mlp", help="handcrafted features + StandardScaler + MLP with grouped search",
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
    p.add_argument("--level-norm", action="store_true",
                   help="normalise each clip's active-speech level before the features (absolute level is not a cue)")
    _add_robustness_args(p)
    p.add_argument("--band-limit", type=float, default=None, metavar="HZ",
                   help="mel bands, MFCCs and spectral contrast of the spectrum below HZ only (e.g. 7000: not the "
                        "resampler's or codec's roll-off next to 8 kHz); default: up to 8 kHz")
    p.set_defaults(handler=_cmd_mlp)

    p = kinds.add_parser("smile", help="openSMILE ComParE + eGeMAPS functionals + regularised logistic regression",
                         description="Train the openSMILE model (6 461 functionals, level-normalised clips, L2 "
                                     "logistic regression with its penalty chosen by speaker-grouped CV), evaluate "
                                     "both protocols, save. openSMILE's licence is non-commercial.")
    _add_data_args(p)
    p.add_argument("--no-search", action="store_true", help="skip the penalty search; use --C")
    p.add_argument("--C", type=float, default=DEFAULT_C, help="inverse L2 penalty without search (default: %(default)s)")
    p.add_argument("--no-level-norm", action="store_true",
                   help="keep each clip's recorded level (default: normalise the active-speech level first)")
    p.add_argument("--no-adapt", action="store_true",
                   help="skip the speaker-adaptation heads (default: train them, so the model accepts a speaker "
                        "profile from `ser enroll`)")
    _add_robustness_args(p)
    p.set_defaults(handler=_cmd_smile)

    for kind, helptext in (("cnn", "log-mel CNN (Keras, TensorFlow CPU)"),
                           ("ensemble", "ensemble of the MLP, the CNN and the openSMILE model (equal weights)")):
        p = kinds.add_parser(kind, help=helptext, description=f"Train the {helptext}, evaluate both protocols, save.")
        _add_data_args(p)
        p.add_argument("--epochs", type=int, default=None, help="maximum epochs of the CNN (early stopping decides)")
        p.add_argument("--batch-size", type=int, default=None, help="mini-batch size of the CNN")
        p.add_argument("--no-augment", action="store_true",
                       help="train without the augmented copies (pitch +2, stretch 1.1x, noise 20 dB)")
        _add_robustness_args(p)
        if kind == "ensemble":
            p.add_argument("--members", nargs="+", default=list(ENSEMBLE_MEMBERS), choices=list(ENSEMBLE_MEMBERS),
                           help="the members (default: %(default)s)")
            for member in ENSEMBLE_MEMBERS:
                p.add_argument(f"--{member}", default=None, metavar="DIR",
                               help=f"reuse a saved {member} (e.g. models/{member}) and the out-of-fold predictions "
                                    "saved with it instead of training one")
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
    adapt = p.add_mutually_exclusive_group()
    adapt.add_argument("--profile", default=None, metavar="JSON",
                       help="adapt every file to this speaker profile (from `ser enroll`); the model must be "
                            "trained for adaptation (--model smile)")
    adapt.add_argument("--speaker-column", default=None, metavar="NAME",
                       help="adapt each file to its own speaker: the speaker is this column of the input CSV (or "
                            "of a folder's manifest.csv); each speaker is enrolled from up to --enrol-clips of its "
                            f"own files in the run; speakers with fewer than {MIN_ENROL_CLIPS} usable files are "
                            "predicted unadapted (listed at the end)")
    p.add_argument("--enrol-clips", type=int, default=ENROL_CLIPS, metavar="N",
                   help="with --speaker-column: files per speaker its profile is made from (default: %(default)s)")
    _add_scheduler_arg(p)
    p.set_defaults(handler=_cmd_predict)

    p = sub.add_parser("enroll", help="make a speaker profile from a few clips of one speaker (adapt to a voice)",
                       description="Make a speaker profile (JSON, statistics of the voice, no audio) from a few "
                                   f"unlabelled clips of one speaker of varied emotions: at least {MIN_ENROL_CLIPS}, 8 "
                                   "or more adapt fully, 16 or more are best. Use it with `ser predict ... --profile me.json --model smile` or "
                                   "ser.predict(clip, model='smile', speaker=ser.SpeakerProfile.load('me.json')).")
    p.add_argument("clips", nargs="+", help="audio files, folders or a CSV with a path column (one speaker)")
    p.add_argument("--out", required=True, metavar="JSON", help="where to write the profile (replaced atomically)")
    p.add_argument("--model", default="smile", help="a model trained for adaptation: smile, ensemble or a model "
                                                    "folder (default: %(default)s)")
    p.add_argument("--add-to", default=None, metavar="JSON", help="extend this profile with the clips")
    p.set_defaults(handler=_cmd_enroll)

    _add_hub_commands(sub)
    p = sub.add_parser("report", help="regenerate the README's tables from what was measured",
                       description="Rewrite README.md's results block (the bundled models' metadata.json) and "
                                   "studies block (reports/*.json), and the bundled models' cards.")
    p.add_argument("--readme", default=str(settings.PROJECT / "README.md"), help="default: %(default)s")
    p.add_argument("--models-dir", default=None, help="default $SER_MODELS_DIR, else the bundled models/")
    p.set_defaults(handler=_cmd_report)
    return parser


def _add_hub_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``push`` and ``pull``; each sets ``handler(args) -> exit code`` (0 ok, 1 error)."""
    p = subparsers.add_parser("push", help="push a saved model folder to a Hugging Face Hub model repo",
                              description="Push a saved model folder (e.g. models/mlp) to a Hub model repo: one "
                                          "commit with a model card, tagged with the model version. The token "
                                          "comes from HF_TOKEN or `hf auth login`.")
    p.add_argument("folder", help="model folder, e.g. models/mlp (or a kind, looked up in --models-dir)")
    p.add_argument("--repo", required=True, help="Hub repo id, namespace/name")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--message", default=None, help="commit message")
    p.add_argument("--endpoint", default=None, help="Hub URL (default: HF_ENDPOINT or huggingface.co)")
    p.add_argument("--models-dir", default=None,
                   help="where a bare kind (mlp, cnn) is looked up (default $SER_MODELS_DIR, else the bundled models/)")
    p.set_defaults(handler=_cmd_push)

    q = subparsers.add_parser("pull", help="download a model from a Hugging Face Hub repo and verify it",
                              description="Download a ser model repo at a revision, check every file against "
                                          "the sha256 in its metadata.json, and print the folder.")
    q.add_argument("repo", help="Hub repo id, namespace/name")
    q.add_argument("--revision", default=None, help="tag (model version), branch or commit (default: main)")
    q.add_argument("--endpoint", default=None, help="Hub URL (default: HF_ENDPOINT or huggingface.co)")
    q.add_argument("--models-dir", default=None,
                   help="download into <models-dir>/hub/<namespace>--<name> (default $SER_MODELS_DIR, else the bundled models/)")
    q.add_argument("--cache", action="store_true", help="keep the files in the Hugging Face cache only")
    q.add_argument("--trust-remote-pickle", action="store_true",
                   help="also download the seed-compatible pickles (they can run arbitrary code when loaded)")
    q.set_defaults(handler=_cmd_pull)


def _cmd_push(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    if not folder.exists() and (_models_root(args) / args.folder).is_dir():
        folder = _models_root(args) / args.folder
    try:
        info = push(folder, args.repo, private=args.private, endpoint=args.endpoint, commit_message=args.message)
    except ModelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    tag = f"tag {info['tag']}" + ("" if info["tag_created"] else f" (already existed, at {info['tag_commit']})")
    print(f"pushed {folder} to {info['repo_id']} ({'private' if info['private'] else 'public'}): "
          f"{info['commit_url']}, {tag}")
    return 0


def _cmd_pull(args: argparse.Namespace) -> int:
    local_dir = None
    if not args.cache:
        local_dir = _models_root(args) / "hub" / args.repo.replace("/", "--")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            path = pull(args.repo, revision=args.revision, local_dir=local_dir, endpoint=args.endpoint,
                        trust_remote_pickle=args.trust_remote_pickle)
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
        version = json.loads((path / "metadata.json").read_text(encoding="utf-8")).get("version")
    except ModelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"pulled {args.repo}@{args.revision or 'main'} (version {version}) into {path}")
    return 0


def _load_clips(args) -> list:
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
    bar = tqdm(total=100, unit="%", bar_format="{l_bar}{bar}| {elapsed} {postfix}", file=sys.stderr)

    def progress(fraction: float, message: str) -> None:
        bar.n = int(round(100 * fraction))
        bar.set_postfix_str(message)
        bar.refresh()
        if fraction >= 1.0:
            bar.close()

    return progress


def _report(metadata: dict, saved: Path | None) -> None:
    print(protocol_table(metadata))
    si = metadata.get("metrics", {}).get("speaker_independent", {})
    for pair in si.get("error_analysis", [])[:3]:
        print(f"most confused (speaker-independent): {pair['pair'][0]} <-> {pair['pair'][1]}: {pair['count']} clips")
    imp = metadata.get("feature_importance", {}).get("speaker_independent")
    if imp:
        top = ", ".join(f"{k} {v:+.3f}" for k, v in list(imp.items())[:4])
        print(f"feature families by permutation importance (accuracy drop): {top}")
    print(f"saved: {saved}" if saved else "not saved (--no-save)")


def _models_root(args) -> Path:
    return Path(args.models_dir) if getattr(args, "models_dir", None) else settings.models_dir()


def _cmd_mlp(args) -> int:
    clips = _load_clips(args)
    params = {k: v for k, v in (("hidden_layer_sizes", args.hidden), ("alpha", args.alpha),
                                ("learning_rate_init", args.lr), ("batch_size", args.batch_size))
              if v is not None}
    rec, report = train_mlp(clips, search=not args.no_search, n_iter=args.n_iter, params=params,
                            variants=_training_copies(args, VARIANTS),
                            test_conditions=args.test_conditions,
                            importance=not args.no_importance, seed=args.seed, n_jobs=args.jobs,
                            progress=_progress_printer(), data_root=args.data,
                            config=FeatureConfig(level_db=TARGET_DBFS if args.level_norm else None,
                                                 band_limit=args.band_limit))
    saved = None if args.no_save else rec.save_pretrained(_models_root(args) / "mlp")
    _report(rec.metadata, saved)
    return 0


def _cmd_smile(args) -> int:
    config = SmileConfig(level_db=None if args.no_level_norm else TARGET_DBFS)
    rec, _ = train_smile(_load_clips(args), config=config, search=not args.no_search, C=args.C, seed=args.seed,
                         adapt=not args.no_adapt, variants=_training_copies(args, ()),
                         test_conditions=args.test_conditions, n_jobs=args.jobs, progress=_progress_printer(),
                         data_root=args.data)
    saved = None if args.no_save else rec.save_pretrained(_models_root(args) / "smile")
    _report(rec.metadata, saved)
    return 0


def _cmd_deep(args) -> int:
    """``ser train cnn|ensemble``: train, evaluate both protocols, save, print the tables.

    Every epoch prints one line (stage, loss, accuracy, validation loss and accuracy) above the
    progress bar. ``ensemble`` trains its members on the same splits (or reuses saved ones with
    ``--mlp``/``--cnn``/``--smile``) and saves every model it produced.
    """
    clips, models_root, progress = _load_clips(args), _models_root(args), _progress_printer()

    def on_epoch(stage: str, epoch: int, logs: dict) -> None:
        tqdm.write(f"{stage:<26} epoch {epoch:>3}  loss {logs.get('loss', 0):.3f}  acc {logs.get('accuracy', 0):.3f}"
                   f"  val_loss {logs.get('val_loss', 0):.3f}  val_acc {logs.get('val_accuracy', 0):.3f}",
                   file=sys.stderr)

    variants = _training_copies(args, VARIANTS)
    kwargs = dict(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, n_jobs=args.jobs,
                  data_root=args.data)
    if args.kind == "cnn":
        rec, _ = train_cnn(clips, variants=variants, test_conditions=args.test_conditions, progress=progress,
                           on_epoch=on_epoch, **kwargs)
        saved = None if args.no_save else rec.save_pretrained(models_root / "cnn")
        _report(rec.metadata, saved)
        return 0
    reuse = {m: getattr(args, m) for m in args.members if getattr(args, m, None)}
    member_kwargs = {"mlp": {"variants": variants, "test_conditions": args.test_conditions},
                     "cnn": {"variants": variants, "test_conditions": args.test_conditions, "epochs": args.epochs,
                             "batch_size": args.batch_size, "on_epoch": on_epoch},
                     "smile": {"variants": _training_copies(args, ()),
                               "test_conditions": args.test_conditions}}
    out = train_all(clips, members=args.members, reuse=reuse, member_kwargs=member_kwargs, progress=progress,
                    seed=args.seed, n_jobs=args.jobs, data_root=args.data)
    for kind in (*args.members, "ensemble"):
        rec, _, reused = out[kind]
        if reused:
            print(f"== {kind}: reused {rec.path} (version {rec.metadata.get('version')}) ==")
            print(protocol_table(rec.metadata))
            continue
        saved = None if args.no_save else rec.save_pretrained(models_root / kind)
        print(f"== {kind} ==")
        _report(rec.metadata, saved)
    return 0


def _cmd_predict(args) -> int:
    bar = None  # drawn once the model is loaded and the inputs are known: an error stays one line

    def start(run: CsvRun) -> None:
        nonlocal bar
        if run.skipped:
            print(f"resuming: {run.skipped} of {run.total} files already in {run.out}; "
                  f"{run.total - run.skipped} to go", file=sys.stderr)
        bar = tqdm(total=run.total, initial=run.skipped, unit="file", desc="predict", disable=args.no_progress,
                   file=sys.stderr, dynamic_ncols=True)

    if args.speaker_column:
        print(f"enrolling each speaker from up to {args.enrol_clips} of its files", file=sys.stderr)
    try:
        run = predict_to_csv(args.inputs, model=args.model, out=args.out, n_jobs=args.jobs, chunk=args.chunk,
                             scheduler=args.scheduler, retry_errors=args.retry_errors, on_start=start,
                             on_rows=lambda n: bar.update(n), profile=args.profile,
                             speaker_column=args.speaker_column, enrol_clips=args.enrol_clips)
    finally:
        if bar is not None:
            bar.close()
    print(f"{run.predicted - run.failed} predicted, {run.failed} could not be read, {run.skipped} skipped "
          f"(already done)" + (f"; results in {run.out}" if run.out else ""), file=sys.stderr)
    if args.profile:
        print(f"adapted to the speaker profile {args.profile}", file=sys.stderr)
        for note in run.notes:
            print(f"  note: {note}", file=sys.stderr)
    if args.speaker_column:
        print(f"adapted to {len(run.adapted_speakers)} speakers from their own files", file=sys.stderr)
        if run.too_few:
            print(f"{len(run.too_few)} speakers had too few usable files (fewer than {MIN_ENROL_CLIPS}) and were "
                  "predicted without adaptation:", file=sys.stderr)
            for speaker, why in run.too_few.items():
                print(f"  {speaker}: {why}", file=sys.stderr)
    return 0


def _cmd_enroll(args) -> int:
    clips = expand_inputs(args.clips)
    old = SpeakerProfile.load(args.add_to) if args.add_to else None
    profile = get_recognizer(args.model).enroll(clips, add_to=old)
    profile.save(args.out)
    more = ("; 8 or more clips adapt fully (16 or more are best)" if profile.n_clips < 8
            else "; 16 or more clips are best" if profile.n_clips < 16 else "")
    print(f"speaker profile of {profile.n_clips} clips written to {args.out}{more}", file=sys.stderr)
    return 0


def _cmd_report(args) -> int:
    readme = Path(args.readme)
    if not readme.is_file():
        raise ParameterError(f"No README at {readme}; pass --readme FILE.")
    try:
        changed = update_readme(readme, args.models_dir or settings.models_dir())
    except ValueError as e:  # the file lacks the marked blocks
        raise ParameterError(f"{readme}: {e}") from None
    print(f"{readme} updated" if changed else f"{readme} already up to date", file=sys.stderr)
    models = Path(args.models_dir or settings.models_dir())
    for kind in MODEL_ORDER:
        if (models / kind / "metadata.json").is_file() and refresh_card(models / kind):
            print(f"{models / kind / 'README.md'} (model card) updated", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the ``ser`` command (``ser --help``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TRAIN_KINDS:  # the seed's form: python train.py mlp ...
        argv.insert(0, "train")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        if getattr(args, "scheduler", None) and args.command == "train":
            with parallel_context(args.scheduler):  # joblib work (features, search) runs on the cluster
                return int(args.handler(args) or 0)
        return int(args.handler(args) or 0)
    except SerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the previously saved model is untouched", file=sys.stderr)
        return 130
