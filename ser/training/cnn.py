"""CNN training: cached log-mel images, the fit loop, and the evaluated training run.

- images of every clip and augmented variant (:data:`ser.audio.augment.VARIANTS`) are computed once
  and cached (:func:`ser.features.handcrafted.map_corpus`, ``cache_dir()/logmel``, float16);
- each epoch shows every training clip-variant once, as a random one of its windows, shifted at
  random inside its padding and with one frequency and one time mask (SpecAugment) — training
  side only;
- class weights ``n / (K n_k)``; early stopping on the loss of held-out *training* speakers
  (never the test fold) with the best weights restored; the learning rate halves on plateaus;
- fixed seeds (``keras.utils.set_random_seed``).
"""

from __future__ import annotations

import hashlib
import json
import time
from functools import partial
from typing import Any, NamedTuple, Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from ..audio.augment import ORIGINAL, VARIANTS
from ..audio.corpora import Clip
from ..features.handcrafted import map_corpus
from ..features.logmel import SpectrogramConfig, logmel_windows
from ..models.calibration import fit_temperature
from ..models.cnn import CNNRecognizer, build_cnn, keras_module
from .metadata import Progress, audio_settings, data_summary, finish, labels_of, library_versions, noop_progress
from .protocols import PROTOCOLS, confused_pairs, protocol_splits, robustness_summary, run_protocol, under_conditions

__all__ = ["DEFAULT_PARAMS", "CNNTrainer", "FittedCNN", "logmel_corpus", "validation_split", "fit_cnn",
           "train_cnn"]

#: Network and training defaults (``train_cnn(params=...)`` overrides them). Chosen among six
#: candidates (3 or 4 blocks, global or frequency-keeping head, learning rate 1e-3 or 2e-3) on one
#: development split of RAVDESS (fit on actors 1-20 minus two validation actors, scored on 21-24).
DEFAULT_PARAMS: dict = {
    "filters": [16, 32, 64, 128],
    "stem_stride": 2,
    "head": "freq",
    "block_dropout": 0.1,
    "dropout": 0.3,
    "learning_rate": 2e-3,
    "batch_size": 64,
    "epochs": 35,
    "patience": 10,
    "validation_speakers": 2,
    "masking": True,
    "shift": True,
}


# -- data ------------------------------------------------------------------------------------------

def _spec_key(config: SpectrogramConfig) -> str:
    blob = json.dumps({**config.to_dict(), "dtype": "float16"}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def _windows16(y: np.ndarray, *, config: SpectrogramConfig) -> np.ndarray:
    return logmel_windows(y, config=config).astype(np.float16)


def logmel_corpus(
    paths: Sequence[str],
    *,
    config: SpectrogramConfig = SpectrogramConfig(),
    variants: Sequence[str] = (ORIGINAL,),
    n_jobs: int = -1,
    cache: bool = True,
    progress: bool = False,
) -> tuple[list[list[np.ndarray]], list[str]]:
    """Log-mel windows of every file and variant, cached (``cache_dir()/logmel``).

    Returns
    -------
    images : list of lists of np.ndarray
        ``images[i][j]`` is ``[n_windows, n_mels, n_frames]`` float16 for ``paths[i]``, ``variants[j]``.
    hashes : list of str
        sha256 of each file.
    """
    return map_corpus(paths, partial(_windows16, config=config), key=_spec_key(config), subdir="logmel",
                      sr=config.sr, variants=variants, n_jobs=n_jobs, cache=cache, progress=progress,
                      desc="log-mel")


def validation_split(
    clips: Sequence[Clip], train_idx: np.ndarray, *, n_speakers: int = 2, seed: int = 0,
    groups: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split a training side into ``(fit_idx, val_idx)`` for early stopping.

    Holds out ``n_speakers`` whole speakers of the training side (alternating genders, chosen by
    ``seed``), so validation is speaker-independent like the protocol. With fewer than
    ``n_speakers + 2`` speakers, holds out 10 % of the clips instead, stratified by emotion, keeping
    identical recordings (``groups``) together. Never touches anything outside ``train_idx``.
    """
    train_idx = np.asarray(train_idx)
    speakers = sorted({clips[i].speaker for i in train_idx})
    rng = np.random.default_rng(seed)
    if n_speakers > 0 and len(speakers) >= n_speakers + 2:
        by_gender: dict[str, list[str]] = {}
        for s in speakers:
            by_gender.setdefault(next(clips[i].gender for i in train_idx if clips[i].speaker == s), []).append(s)
        pools = [list(rng.permutation(v)) for _, v in sorted(by_gender.items())]
        held: list[str] = []
        while len(held) < n_speakers:
            for pool in pools:
                if pool and len(held) < n_speakers:
                    held.append(str(pool.pop(0)))
        is_val = np.array([clips[i].speaker in held for i in train_idx])
        return train_idx[~is_val], train_idx[is_val]
    y = np.array([clips[i].emotion for i in train_idx])
    g = np.asarray([groups[i] for i in train_idx] if groups is not None else [clips[i].clip_id for i in train_idx])
    n_splits = max(2, min(10, int(np.bincount(np.unique(y, return_inverse=True)[1]).min())))
    fit, val = next(StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(y, y, g))
    return np.sort(train_idx[fit]), np.sort(train_idx[val])


def _content_span(img: np.ndarray) -> tuple[int, int]:
    """First and last frame above the dB floor (the rest is padding)."""
    active = np.flatnonzero(img.max(axis=0) > -0.999)
    return (int(active[0]), int(active[-1])) if len(active) else (0, img.shape[1] - 1)


def _augment_image(img: np.ndarray, rng: np.random.Generator, *, shift: bool, masking: bool) -> np.ndarray:
    """Random shift inside the padding, then one frequency and one time mask (training only)."""
    out = img.astype(np.float32, copy=True)
    n_mels, n_frames = out.shape
    if shift:
        first, last = _content_span(out)
        lo, hi = -first, n_frames - 1 - last
        if hi > lo:
            k = int(rng.integers(lo, hi + 1))
            if k:
                out = np.roll(out, k, axis=1)  # only padding (floor values) wraps around
    if masking:
        fill = float(out.mean())
        f = int(rng.integers(0, n_mels // 8 + 1))
        f0 = int(rng.integers(0, n_mels - f + 1))
        out[f0:f0 + f] = fill
        t = int(rng.integers(0, n_frames // 8 + 1))
        t0 = int(rng.integers(0, n_frames - t + 1))
        out[:, t0:t0 + t] = fill
    return out


def _class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0)
    return w.astype(np.float32)


def _stack_windows(images: list[list[np.ndarray]], idx: np.ndarray, variant: int = 0):
    """All windows of clips ``idx`` (one variant) and the clip each window belongs to."""
    parts = [images[i][variant] for i in idx]
    owner = np.repeat(np.arange(len(idx)), [len(p) for p in parts])
    return np.concatenate(parts).astype(np.float32), owner


def _clip_proba(model, images, idx: np.ndarray, *, chunk: int = 256) -> np.ndarray:
    """Mean softmax over each clip's windows (unaugmented), as :meth:`CNNRecognizer.predict_proba`."""
    X, owner = _stack_windows(images, idx)
    p = np.concatenate([np.asarray(model.predict_on_batch(X[s:s + chunk])) for s in range(0, len(X), chunk)])
    out = np.zeros((len(idx), p.shape[1]))
    np.add.at(out, owner, p)
    return out / np.bincount(owner, minlength=len(idx))[:, None]


def fit_cnn(
    images: list[list[np.ndarray]],
    y: np.ndarray,
    fit_idx: np.ndarray,
    val_idx: np.ndarray,
    *,
    n_classes: int,
    params: dict | None = None,
    seed: int = 0,
    on_epoch=None,
):
    """Train one CNN on clips ``fit_idx`` (every variant), early-stopping on clips ``val_idx``.

    Parameters
    ----------
    images : list of lists of np.ndarray
        ``images[i][j]``: windows ``[n_windows, n_mels, n_frames]`` of clip ``i``, variant ``j``
        (variant 0 unaugmented; only it is used for validation).
    y : np.ndarray [shape=(n_clips,)]
        Class index of each clip (the network's output order).
    on_epoch : callable, optional
        ``on_epoch(epoch, logs)`` after every epoch (``logs``: loss, accuracy, val_loss, val_accuracy).

    Returns
    -------
    model : keras.Model with the best weights (lowest validation loss) restored
    history : dict
        Per-epoch ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``lr``, plus ``best_epoch``
        (1-based), ``epochs`` run and ``seconds_per_epoch``.
    """
    keras = keras_module()
    p = {**DEFAULT_PARAMS, **(params or {})}
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    n_variants = len(images[fit_idx[0]])
    items = [(i, v) for i in fit_idx for v in range(n_variants)]
    weights = _class_weights(y[fit_idx], n_classes)
    shape = images[fit_idx[0]][0].shape[1:]
    batch = int(p["batch_size"])

    class Batches(keras.utils.PyDataset):
        """Every training clip-variant once per epoch: a random window, shifted and masked."""

        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)
            self.order = rng.permutation(len(items))

        def __len__(self):
            return int(np.ceil(len(items) / batch))

        def __getitem__(self, k):
            # Every batch is full (the last wraps around), so the step is traced once.
            chosen = [items[self.order[j % len(items)]] for j in range(k * batch, (k + 1) * batch)]
            xs = np.empty((len(chosen),) + shape, np.float32)
            for row, (i, v) in enumerate(chosen):
                wins = images[i][v]
                img = wins[int(rng.integers(len(wins)))]
                xs[row] = _augment_image(img, rng, shift=p["shift"], masking=p["masking"])
            ys = np.array([y[i] for i, _ in chosen])
            return xs, ys, weights[ys]

        def on_epoch_end(self):
            self.order = rng.permutation(len(items))

    Xv, owner = _stack_windows(images, val_idx)
    yv = y[val_idx][owner]
    model = build_cnn(shape, n_classes, filters=p["filters"], stem_stride=p["stem_stride"], head=p["head"],
                      block_dropout=p["block_dropout"], dropout=p["dropout"], seed=seed)
    # No XLA: on these CPUs it compiled for ~40 s and ran slower than the plain graph.
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=p["learning_rate"]),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=False)
    times: list[float] = []

    class Progress(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)
            if on_epoch is not None:
                on_epoch(epoch + 1, dict(logs or {}))

    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(p["patience"]),
                                         restore_best_weights=True)
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5,
                                                patience=max(1, int(p["patience"]) // 2), min_lr=1e-5)
    hist = model.fit(Batches(), validation_data=(Xv, yv), validation_batch_size=256, epochs=int(p["epochs"]),
                     callbacks=[plateau, stop, Progress()], verbose=0)
    h = {k: [float(v) for v in vals] for k, vals in hist.history.items()
         if k in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")}
    h["best_epoch"] = int(np.argmin(h["val_loss"])) + 1
    h["epochs"] = len(h["loss"])
    h["seconds_per_epoch"] = round(float(np.mean(times)), 2) if times else None
    h["train_images_per_epoch"] = len(items)
    h["val_clips"] = int(len(val_idx))
    return model, h


class FittedCNN(NamedTuple):
    """A network trained on a training side: the model, its history, the validation clips."""

    model: Any
    history: dict
    val_idx: np.ndarray


class CNNTrainer:
    """Fits of the CNN on cached log-mel windows, their probabilities and temperatures.

    What :func:`train_cnn` and the CNN studies in ``bench/`` share: a training side is split into
    fit and validation speakers (:func:`validation_split`), trained with :func:`fit_cnn`, and clips
    are predicted as the mean softmax over their windows, in ``labels`` order.

    Parameters
    ----------
    images : list of lists of np.ndarray
        ``images[i][j]``: windows of clip ``i`` in variant column ``j`` (:func:`logmel_corpus`);
        column 0 is the clip as recorded.
    clips : sequence of Clip
    labels : sequence of str
        Columns of every probability matrix (the network's own order is sorted ``labels``).
    train_cols : sequence of int, optional
        Variant columns training images come from (default: every column; must start with 0).
    groups : sequence of str, optional
        Identical-recording ids (file hashes) for the clip-level validation fallback.
    params : dict, optional
        Overrides of :data:`DEFAULT_PARAMS`.
    seed : int
    """

    def __init__(self, images: list, clips: Sequence[Clip], labels: Sequence[str], *,
                 train_cols: Sequence[int] | None = None, groups: Sequence[str] | None = None,
                 params: dict | None = None, seed: int = 0):
        self.images = images
        self.clips = list(clips)
        self.labels = list(labels)
        self.classes = sorted(self.labels)
        self.y = np.array([self.classes.index(c.emotion) for c in self.clips])
        self.train_cols = None if train_cols is None else list(train_cols)
        if self.train_cols is not None and self.train_cols[:1] != [0]:
            raise ValueError(f"train_cols must start with column 0 (the clip as recorded), got {self.train_cols}.")
        self.groups = groups
        self.params = {**DEFAULT_PARAMS, **(params or {})}
        self.seed = seed

    def _columns(self, idx: np.ndarray, cols: Sequence[int] | None) -> list:
        """``images`` with only clips ``idx`` holding only columns ``cols`` (``None``: all of it)."""
        if cols is None:
            return self.images
        view: list = [[] for _ in self.images]
        for i in idx:
            view[i] = [self.images[i][c] for c in cols]
        return view

    def fit(self, train_idx: np.ndarray, *, on_epoch=None) -> FittedCNN:
        """A network trained on clips ``train_idx`` (every training column), early-stopped on
        ``params["validation_speakers"]`` of their speakers; ``history["validation_speakers"]`` names them."""
        fit_idx, val_idx = validation_split(self.clips, train_idx, n_speakers=int(self.params["validation_speakers"]),
                                            seed=self.seed, groups=self.groups)
        images = self._columns(np.concatenate([fit_idx, val_idx]), self.train_cols)
        model, hist = fit_cnn(images, self.y, fit_idx, val_idx, n_classes=len(self.classes), params=self.params,
                              seed=self.seed, on_epoch=on_epoch)
        hist["validation_speakers"] = sorted({self.clips[i].speaker for i in val_idx})
        return FittedCNN(model, hist, val_idx)

    def proba(self, model, idx: np.ndarray, *, col: int = 0) -> np.ndarray:
        """Probabilities ``[len(idx), len(labels)]`` of clips ``idx`` in column ``col`` (mean over windows)."""
        idx = np.asarray(idx)
        p = _clip_proba(model, self._columns(idx, None if col == 0 else [col]), idx)
        return p[:, [self.classes.index(lab) for lab in self.labels]]

    def temperature(self, fitted: FittedCNN) -> tuple[float, np.ndarray, np.ndarray]:
        """``T`` fitted on the clips of the validation speakers as recorded: held out of the gradient
        steps but on the training side (they chose the early-stopping epoch, so ``T`` may be a little
        small). Returns ``(T, their probabilities, their label columns)``."""
        p = self.proba(fitted.model, fitted.val_idx)
        y = np.array([self.labels.index(self.clips[i].emotion) for i in fitted.val_idx])
        return fit_temperature(p, y), p, y


# -- training run ---------------------------------------------------------------------------------

def train_cnn(
    clips: Sequence[Clip],
    *,
    params: dict | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    variants: Sequence[str] = VARIANTS,
    test_conditions: Sequence[str] = (),
    protocols: Sequence[str] = PROTOCOLS,
    final: bool = True,
    seed: int = 0,
    n_jobs: int = -1,
    progress: Progress = noop_progress,
    on_epoch=None,
    data_root: str | None = None,
    config: SpectrogramConfig = SpectrogramConfig(),
):
    """Evaluate the CNN under each protocol, then train the final model on every clip.

    Parameters
    ----------
    params : dict, optional
        Overrides of :data:`DEFAULT_PARAMS` (``epochs`` and ``batch_size`` also as arguments).
    variants : sequence of str
        Augmented copies added on the training side (:data:`ser.augment.VARIANTS`, and
        :data:`ser.audio.degrade.TRAINING_VARIANTS` for the robust recipe).
    test_conditions : sequence of str
        Degradations (:data:`ser.audio.degrade.TEST_CONDITIONS`) under which the speaker-independent
        test clips are predicted again by the same fold models: ``metadata["robustness"]`` and
        out-of-fold predictions ``"speaker_independent@<condition>"``.
    final : bool
        Train the final model on all clips (minus the validation speakers that early stopping
        needs); without it, the recognizer returned is ``None`` (evaluation only).
    progress : callable
        ``progress(fraction, message)`` after every epoch.
    on_epoch : callable, optional
        ``on_epoch(stage, epoch, logs)``; ``stage`` is e.g. ``"speaker_independent 2/6"`` or ``"final"``.

    Returns
    -------
    recognizer : CNNRecognizer or None
        With ``metadata`` (``history`` included) and out-of-fold predictions (``oof``); not saved.
    report : TrainingReport
    """
    started = time.time()
    clips = list(clips)
    p = {**DEFAULT_PARAMS, **(params or {})}
    if epochs is not None:
        p["epochs"] = int(epochs)
    if batch_size is not None:
        p["batch_size"] = int(batch_size)
    labels = labels_of(clips)
    classes = sorted(labels)
    all_variants = (ORIGINAL, *variants)
    progress(0.0, f"log-mel images of {len(clips)} clips x {len(all_variants) + len(test_conditions)} variants")
    images, hashes = logmel_corpus([c.path for c in clips], config=config,
                                   variants=(*all_variants, *test_conditions), n_jobs=n_jobs)
    t_images = time.time() - started

    n_folds = {pr: len(protocol_splits(clips, pr, groups=hashes, seed=42)) for pr in protocols}
    n_fits = sum(n_folds.values()) + int(final)
    done = [0]

    trainer = CNNTrainer(images, clips, labels, groups=hashes, params=p, seed=seed,
                         train_cols=range(len(all_variants)))

    def train(train_idx: np.ndarray, stage: str):
        def epoch_done(epoch: int, logs: dict) -> None:
            msg = (f"{stage} epoch {epoch}: loss {logs.get('loss', float('nan')):.3f} "
                   f"acc {logs.get('accuracy', float('nan')):.3f} val_loss {logs.get('val_loss', float('nan')):.3f} "
                   f"val_acc {logs.get('val_accuracy', float('nan')):.3f}")
            progress(min(0.99, (done[0] + epoch / p["epochs"]) / n_fits), msg)
            if on_epoch is not None:
                on_epoch(stage, epoch, logs)

        fitted = trainer.fit(train_idx, on_epoch=epoch_done)
        done[0] += 1
        return fitted.model, fitted.history

    results, fold_histories, timings = {}, {}, {"images": round(t_images, 1)}
    for protocol in protocols:
        histories: list[dict] = []
        degraded: dict[str, list[np.ndarray]] = {c: [] for c in test_conditions}
        t0 = time.time()

        def fit_predict(train_idx: np.ndarray, test_idx: np.ndarray, _h=histories, _p=protocol,
                        _d=degraded) -> np.ndarray:
            model, hist = train(train_idx, f"{_p} {len(_h) + 1}/{n_folds[_p]}")
            _h.append(hist)
            if _p == "speaker_independent":
                for k, c in enumerate(test_conditions):
                    _d[c].append(trainer.proba(model, test_idx, col=len(all_variants) + k))
            return trainer.proba(model, test_idx)

        res = run_protocol(fit_predict, clips, protocol=protocol, labels=labels, groups=hashes, seed=42)
        results.update(under_conditions(res, degraded))
        ids = [clips[i].clip_id for i in res.test_index]
        res.metrics["error_analysis"] = confused_pairs(res.y_true, res.y_pred, labels, ids)
        res.metrics["best_epoch_per_fold"] = [h["best_epoch"] for h in histories]
        results[protocol] = res
        fold_histories[protocol] = histories
        timings[protocol] = round(time.time() - t0, 1)

    model, final_history = None, None
    if final:
        t0 = time.time()
        model, final_history = train(np.arange(len(clips)), "final")
        timings["final"] = round(time.time() - t0, 1)
    timings["total"] = round(time.time() - started, 1)
    metadata = {
        "model": "cnn",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "params": {
            "network": {k: p[k] for k in ("filters", "stem_stride", "head", "block_dropout", "dropout")},
            "n_parameters": int(model.count_params()) if model is not None else None,
            "optimizer": {"name": "adam", "learning_rate": p["learning_rate"],
                          "reduce_on_plateau": "halve after patience/2 epochs without val_loss gain"},
            "batch_size": p["batch_size"], "max_epochs": p["epochs"],
            "early_stopping": {"monitor": "val_loss", "patience": p["patience"], "restore_best_weights": True,
                               "validation": f"{p['validation_speakers']} speakers of the training side "
                                             "(alternating genders, seeded); never the test fold"},
            "class_weight": "balanced: n / (K n_k) on the training side",
            "augmentation": {"variants": list(variants), "random_window": True, "shift_in_padding": p["shift"],
                             "spec_masking": "one frequency (<= 16 bands) and one time (<= 16 frames) mask "
                                             "per image, filled with the image mean" if p["masking"] else False,
                             "applied_to": "training side only"},
            "seed": seed,
            "final_model": "trained on every clip except the validation speakers used for early stopping "
                           f"({', '.join(final_history['validation_speakers'])})" if final_history else None,
        },
        "preprocessing": {"audio": audio_settings(), "spectrogram": config.to_dict(),
                          "input_shape": [config.n_mels, config.n_frames],
                          "windows": "2.54 s windows, 50 % overlap; shorter clips zero-padded on both sides; "
                                     "probabilities averaged over windows",
                          "cache_dtype": "float16 (training-time images)"},
        "data": data_summary(clips, data_root),
        "metrics": {pr: results[pr].metrics for pr in protocols},
        "robustness": robustness_summary(results),
        "history": {**(final_history or {}), "folds": fold_histories},
        "library_versions": library_versions(),
        "timings_s": timings,
    }
    progress(1.0, "done")
    rec = None if model is None else CNNRecognizer(model, labels=labels, classes=classes, spectrogram=config)
    return finish(rec, metadata, results, clips)


