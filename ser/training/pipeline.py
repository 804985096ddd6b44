"""Training of pipeline models (a feature vector → a scikit-learn pipeline): the MLP and the
openSMILE model share every fit, out-of-fold temperature and protocol loop here.

:class:`PipelineTrainer` fits a kind's pipeline on the feature rows of some clips (and their
augmented copies), gives a fitted pipeline's probabilities through the saved model's own
prediction path, and fits its temperature on out-of-fold predictions of the training clips only.
:func:`evaluate` runs it under the protocols of :mod:`ser.training.protocols` (which own the
splits): per fold it chooses the kind's settings inside the training side only, fits, measures
calibration and, when asked, feature-family importance on the test clips.

**Speaker adaptation.** A trainer made with ``enrolment=Enrolment(method, k)`` fits the head a model
uses with a speaker profile (:class:`ser.models.speaker.AdaptedHead`): each training speaker's rows are
standardised (:func:`ser.models.speaker.standardize_by_enrolment`) by statistics of ``k`` random clips
of that speaker (:func:`ser.models.speaker.enrolment_draw`, seeded per speaker), exactly as a new
speaker's clips are at prediction time from their profile; ``fit`` then returns an ``AdaptedHead``
(pipeline + std floor), and :meth:`PipelineTrainer.adapted_head` adds its temperature.
:func:`fit_adaptation` fits the heads of a recipe for a saved model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar, Sequence

import numpy as np

from ..audio.corpora import Clip
from ..models.calibration import (expected_calibration_error, fit_temperature, out_of_fold_proba,
                                  per_fold_temperature, reliability_diagram)
from ..models.pipeline import PipelineRecognizer
from ..models.speaker import (Z_FROM_CLIPS, Adaptation, AdaptedHead, Enrolment, enrolment_draw,
                              speaker_standardize, standardize_by_enrolment, std_floor)
from .metadata import Progress, noop_progress
from .protocols import confused_pairs, grouped_permutation_importance, run_protocol, under_conditions

__all__ = ["PipelineTrainer", "Evaluation", "evaluate", "ADAPTATION_RECIPE", "fit_adaptation"]

#: The heads a model trained for speaker adaptation gets, and from how many profile clips the z head
#: serves alone (fewer: the blend of the unadapted model and both heads). Why these: the README's
#: enrolment table (``reports/enrolment.json``).
ADAPTATION_RECIPE = {"heads": (Enrolment("z", k=16), Enrolment("mean", k=16)),
                     "z_from_clips": Z_FROM_CLIPS}


class PipelineTrainer:
    """Fits of a pipeline model on precomputed feature rows, and their temperatures.

    A kind subclasses it with its recognizer class, its default feature settings and
    :meth:`fit_rows` (how its pipeline is fitted on rows).

    Parameters
    ----------
    X : np.ndarray [shape=(n_clips, n_variants, n_features)]
        Features of every clip (:func:`ser.features.handcrafted.extract_corpus`): column 0 the clip
        as recorded, the others its augmented or degraded copies.
    clips : sequence of Clip
        The clips of ``X``'s rows (their emotion and speaker).
    labels : sequence of str
        Columns of every probability matrix, in this order.
    config : optional
        The feature settings ``X`` was computed with (kept by the recognizers made here; default
        ``recognizer.feature_config()``).
    train_cols : sequence of int, optional
        Variant columns that training rows come from (default: every column).
    speaker_norm : bool
        Standardise rows per speaker and column with the statistics of the clips of each call
        (:func:`ser.models.speaker.speaker_standardize`): a batch recorded under one condition.
    enrolment : Enrolment, optional
        Standardise each speaker's rows (per column) by the statistics of ``enrolment.k`` random
        clips of its own, as a speaker profile does; fits are then :class:`AdaptedHead`.
    seed : int
        ``random_state`` of every fit.

    Notes
    -----
    Training rows are ordered clip by clip, each clip followed by its copies; probabilities go
    through the recognizer's ``raw_proba_from_features``, the prediction path of a saved model. Nothing here reads rows outside the indices it is given.
    """

    #: the recognizer class of the kind (its ``feature_config`` gives the default settings)
    recognizer: ClassVar[type[PipelineRecognizer]]

    def __init__(self, X: np.ndarray, clips: Sequence[Clip], labels: Sequence[str], *,
                 config=None, train_cols: Sequence[int] | None = None,
                 speaker_norm: bool = False, enrolment: Enrolment | None = None, seed: int = 0):
        self.X = np.asarray(X)
        clips = list(clips)
        if self.X.ndim != 3 or len(self.X) != len(clips):
            raise ValueError(f"Expected X [n_clips, n_variants, n_features] for {len(clips)} clips, "
                             f"got shape {self.X.shape}.")
        self.y = np.array([c.emotion for c in clips])
        self.speakers = np.array([c.speaker for c in clips])
        self.labels = list(labels)
        self.config = self.recognizer.feature_config() if config is None else config
        self.train_cols = list(range(self.X.shape[1])) if train_cols is None else list(train_cols)
        self.speaker_norm = speaker_norm
        if speaker_norm and enrolment is not None:
            raise ValueError("Choose speaker_norm (all clips of a call) or enrolment (k clips), not both.")
        self.enrolment = enrolment
        self.seed = seed

    def rows(self, idx: np.ndarray, col: int = 0, *, floor: np.ndarray | None = None) -> np.ndarray:
        """Feature rows ``[len(idx), n_features]`` of clips ``idx`` in variant column ``col``
        (with :attr:`enrolment`: standardised by each speaker's enrolment clips, z with ``floor``)."""
        R = self.X[idx, col]
        if self.enrolment is not None:
            draw = enrolment_draw(self.speakers[idx], self.enrolment.k, seed=self.seed)
            return standardize_by_enrolment(R, self.speakers[idx], draw, method=self.enrolment.method, floor=floor)
        return speaker_standardize(R, self.speakers[idx]) if self.speaker_norm else R

    def floor(self, idx: np.ndarray) -> np.ndarray | None:
        """The std floor of a z head fitted on clips ``idx``: ``floor_fraction`` x the std of their
        raw training rows (every training column); ``None`` for other fits."""
        if self.enrolment is None or self.enrolment.method != "z":
            return None
        return std_floor(self.X[idx][:, self.train_cols].reshape(-1, self.X.shape[-1]), self.enrolment.floor_fraction)

    def training_rows(self, idx: np.ndarray, *, floor: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows of clips ``idx`` in every training column (each clip followed by its copies) and
        their labels: ``X [len(idx) * len(train_cols), n_features]``, ``y``."""
        R = np.stack([self.rows(idx, c, floor=floor) for c in self.train_cols], axis=1)
        return R.reshape(-1, R.shape[-1]), np.repeat(self.y[idx], len(self.train_cols))

    def fit_rows(self, X: np.ndarray, y: np.ndarray, params: dict):
        """The kind's pipeline fitted on rows ``X`` with labels ``y`` (each kind)."""
        raise NotImplementedError

    def fit(self, idx: np.ndarray, params: dict | None = None):
        """The pipeline fitted on clips ``idx`` and their copies (``params``: the kind's settings);
        with :attr:`enrolment` an :class:`AdaptedHead` (the pipeline and its std floor)."""
        floor = self.floor(idx)
        X, y = self.training_rows(idx, floor=floor)
        model = self.fit_rows(X, y, dict(params or {}))
        return model if self.enrolment is None else AdaptedHead(model, self.enrolment, floor)

    def proba(self, model, idx: np.ndarray | None = None, *, col: int = 0,
              rows: np.ndarray | None = None) -> np.ndarray:
        """Raw probabilities ``[n, len(labels)]`` of clips ``idx`` in column ``col`` (or of ``rows``);
        a label the model never saw (absent from its training side) gets 0. An :class:`AdaptedHead`
        gets the clips standardised by their speakers' own enrolment clips, with its floor."""
        if isinstance(model, AdaptedHead):
            R = self.rows(idx, col, floor=model.floor) if rows is None else rows
            model = model.pipeline
        else:
            R = self.rows(idx, col) if rows is None else rows
        classes = [str(c) for c in model.classes_]
        P = self.recognizer(model, features=self.config, labels=classes).raw_proba_from_features(R)
        out = np.zeros((len(R), len(self.labels)))
        for j, lab in enumerate(self.labels):
            if lab in classes:
                out[:, j] = P[:, classes.index(lab)]
        return out

    def targets(self, idx: np.ndarray) -> np.ndarray:
        """Column of each clip's emotion in :attr:`labels`."""
        return np.array([self.labels.index(e) for e in self.y[idx]])

    def out_of_fold(self, idx: np.ndarray, params: dict | None = None, *, n_splits: int = 3) -> np.ndarray:
        """Probabilities ``[len(idx), len(labels)]`` of the clips ``idx`` as recorded, each from a
        model fitted like :meth:`fit` on the other speakers of ``idx`` (grouped K-fold by speaker)."""
        def inner(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
            return self.proba(self.fit(idx[tr], params), idx[te])

        return out_of_fold_proba(inner, self.speakers[idx], n_splits=n_splits)

    def temperature(self, idx: np.ndarray, params: dict | None = None, *,
                    n_splits: int = 3) -> tuple[float | None, np.ndarray | None]:
        """``(T, out-of-fold probabilities)`` fitted on the training clips ``idx`` only; ``(None,
        None)`` with fewer than 2 speakers there (nothing to hold out)."""
        if len(set(self.speakers[idx].tolist())) < 2:
            return None, None
        oof = self.out_of_fold(idx, params, n_splits=n_splits)
        return fit_temperature(oof, self.targets(idx)), oof

    def calibrated(self, idx: np.ndarray, params: dict | None = None, *, calibrate: bool = True,
                   n_splits: int = 3) -> PipelineRecognizer:
        """A recognizer fitted on clips ``idx`` and their copies, with the temperature of
        :meth:`temperature` (``calibrate=False``: none); not saved, no metadata."""
        if self.speaker_norm or self.enrolment is not None:
            raise ValueError("A recognizer predicts one clip at a time; it cannot apply per-speaker "
                             "normalisation: fit it with speaker_norm=False (enrolment: adapted_head).")
        model = self.fit(idx, params)
        t = self.temperature(idx, params, n_splits=n_splits)[0] if calibrate else None
        return self.recognizer(model, features=self.config, labels=self.labels, temperature=t)

    def adapted_head(self, idx: np.ndarray, params: dict | None = None, *, calibrate: bool = True,
                     n_splits: int = 3) -> AdaptedHead:
        """The :class:`AdaptedHead` fitted on clips ``idx`` (a trainer with :attr:`enrolment`), with
        a temperature fitted like :meth:`calibrated`'s on out-of-fold predictions of those clips,
        each held-out speaker standardised by ``k`` random clips of its own (scored too)."""
        if self.enrolment is None:
            raise ValueError("adapted_head needs a trainer made with enrolment=Enrolment(...).")
        head = self.fit(idx, params)
        head.temperature = self.temperature(idx, params, n_splits=n_splits)[0] if calibrate else None
        return head


def fit_adaptation(trainer_class: type[PipelineTrainer], X: np.ndarray, clips: Sequence[Clip],
                   labels: Sequence[str], idx: np.ndarray, params: dict | None = None, *,
                   recipe: dict = ADAPTATION_RECIPE, calibrate: bool = True, n_splits: int = 3,
                   seed: int = 0, **trainer_kwargs) -> Adaptation:
    """The heads of ``recipe`` (:data:`ADAPTATION_RECIPE`) fitted on clips ``idx`` with the kind's
    settings ``params``: what a model trained for speaker adaptation carries (not evaluated here;
    ``python -m bench.enrolment`` measures it)."""
    heads = {}
    for enrolment in recipe["heads"]:
        trainer = trainer_class(X, clips, labels, enrolment=enrolment, seed=seed, **trainer_kwargs)
        heads[enrolment.method] = trainer.adapted_head(idx, params, calibrate=calibrate, n_splits=n_splits)
    return Adaptation(heads, z_from_clips=int(recipe["z_from_clips"]))


@dataclass
class Evaluation:
    """What :func:`evaluate` measured: per protocol the out-of-fold result, the settings chosen per
    fold, the feature-family importance and the calibration of the speaker-independent folds."""

    results: dict = field(default_factory=dict)  # protocol -> ProtocolResult
    params: dict = field(default_factory=dict)  # protocol -> [settings per fold]
    importance: dict = field(default_factory=dict)  # protocol -> {family: accuracy drop}
    calibration: dict = field(default_factory=dict)  # protocol -> ECE before/after, reliability


def evaluate(
    trainer: PipelineTrainer,
    clips: Sequence[Clip],
    *,
    protocols: Sequence[str],
    hashes: Sequence[str],
    choose: Callable[[np.ndarray], dict],
    calibrate: bool = True,
    calibration_splits: int = 3,
    importance_groups: dict[str, np.ndarray] | None = None,
    test_columns: dict[str, int] | None = None,
    seed: int = 0,
    progress: Progress = noop_progress,
    n_steps: int | None = None,
) -> Evaluation:
    """Out-of-fold evaluation of ``trainer``'s kind under each protocol.

    Parameters
    ----------
    choose : callable
        ``choose(train_idx) -> settings`` for the fit of a fold, from the training clips only.
    hashes : sequence of str
        Content hash of every clip: identical recordings stay on one side of the stratified split.
    importance_groups : {family: column indices}, optional
        Measure grouped permutation importance of these families on each fold's test clips.
    test_columns : {condition: variant column}, optional
        Degraded copies of every clip (never trained on) that the speaker-independent fold models
        also predict: results ``"speaker_independent@<condition>"``
        (:func:`ser.training.protocols.under_condition`).
    n_steps : int, optional
        ``progress`` spans ``len(protocols)`` of ``n_steps`` equal parts (the caller's final fit
        takes the rest).
    """
    clips = list(clips)
    labels = trainer.labels
    out = Evaluation()
    results, chosen_params, importances, calibration = out.results, out.params, out.importance, out.calibration
    n_steps = n_steps or len(protocols)
    for step, protocol in enumerate(protocols):
        fold_importance: list[dict] = []
        fold_params: list[dict] = []
        fold_calibrated: list[tuple[np.ndarray, float]] = []
        degraded: dict[str, list[np.ndarray]] = {c: [] for c in (test_columns or {})}

        def fit_predict(train: np.ndarray, test: np.ndarray, _p=protocol, _d=degraded) -> np.ndarray:
            chosen = choose(train)
            model = trainer.fit(train, chosen)
            fold_params.append(chosen)
            if _p == "speaker_independent":
                for c in _d:
                    _d[c].append(trainer.proba(model, test, col=test_columns[c]))
            if calibrate and _p == "speaker_independent":
                t, _ = trainer.temperature(train, chosen, n_splits=calibration_splits)
                if t is not None:
                    fold_calibrated.append((test, t))
            if importance_groups:
                fold_importance.append(grouped_permutation_importance(
                    lambda R: trainer.proba(model, rows=R), trainer.rows(test), trainer.targets(test),
                    importance_groups, n_repeats=2, seed=seed))
            return trainer.proba(model, test)

        def on_fold(done: int, total: int, _step=step, _p=protocol) -> None:
            progress((_step + done / total) / n_steps, f"{_p}: fold {done}/{total}")

        res = run_protocol(fit_predict, clips, protocol=protocol, labels=labels, groups=hashes,
                           seed=42, on_fold=on_fold)
        ids = [clips[i].clip_id for i in res.test_index]
        res.metrics["error_analysis"] = confused_pairs(res.y_true, res.y_pred, labels, ids)
        res.metrics["params_per_fold"] = fold_params
        if fold_calibrated and len(fold_calibrated) == len(fold_params):
            # the raw out-of-fold probabilities, each fold scaled by the T of its own training side
            position = {int(i): k for k, i in enumerate(res.test_index)}
            scaled = per_fold_temperature(res.proba, [t for _, t in fold_calibrated],
                                          [[position[int(i)] for i in test] for test, _ in fold_calibrated])
            calibration[protocol] = {
                "temperatures": [t for _, t in fold_calibrated],
                "ece_before": expected_calibration_error(res.proba, res.y_true),
                "ece_after": expected_calibration_error(scaled, res.y_true),
                "reliability_before": reliability_diagram(res.proba, res.y_true),
                "reliability_after": reliability_diagram(scaled, res.y_true),
            }
        results[protocol] = res
        results.update(under_conditions(res, degraded))
        chosen_params[protocol] = fold_params
        if fold_importance:
            mean = {k: float(np.mean([f[k] for f in fold_importance])) for k in fold_importance[0]}
            importances[protocol] = dict(sorted(mean.items(), key=lambda kv: -kv[1]))
    return out
