"""The MLP: one scikit-learn ``Pipeline(StandardScaler, MLPClassifier)`` and its grouped search.

Scaler and network are one object, saved whole, so training and prediction cannot diverge.
Hyperparameters are searched with speaker-grouped cross-validation *inside* the training data
only (``GroupKFold``), never on the clips a protocol tests.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["DEFAULT_PARAMS", "SEARCH_SPACE", "TRUSTED_SKOPS_TYPES", "make_pipeline", "search_params",
           "fit_pipeline", "load_pipeline"]

#: Types a fitted ``Pipeline(StandardScaler, MLPClassifier(solver="adam"))`` needs beyond skops'
#: defaults: exactly ``skops.io.get_untrusted_types`` of such a pipeline (a test re-derives it).
TRUSTED_SKOPS_TYPES: list[str] = ["sklearn.neural_network._stochastic_optimizers.AdamOptimizer"]

#: Defaults of the network (the search may change them).
DEFAULT_PARAMS: dict = {
    "hidden_layer_sizes": (256, 128),
    "alpha": 1e-2,
    "learning_rate_init": 1e-3,
    "batch_size": 128,
}
#: Candidates of the grouped search (``Pipeline`` parameter names without the ``mlp__`` prefix).
SEARCH_SPACE: dict = {
    "hidden_layer_sizes": [(256,), (256, 128), (512, 256)],
    "alpha": [1e-3, 1e-2, 1e-1, 1.0],
    "learning_rate_init": [1e-3, 3e-4],
    "batch_size": [64, 256],
}


def make_pipeline(*, random_state: int = 0, max_iter: int = 300, early_stopping: bool = True, **params):
    """``Pipeline([("scaler", StandardScaler()), ("mlp", MLPClassifier(...))])``.

    ``params`` override :data:`DEFAULT_PARAMS`; early stopping holds out 10 % of the training rows.
    """
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    unknown = set(params) - set(DEFAULT_PARAMS)
    if unknown:
        raise ValueError(f"Unknown MLP parameters {sorted(unknown)}; expected {sorted(DEFAULT_PARAMS)}.")
    p = {**DEFAULT_PARAMS, **params}
    p["hidden_layer_sizes"] = tuple(p["hidden_layer_sizes"])
    mlp = MLPClassifier(**p, max_iter=max_iter, early_stopping=early_stopping, validation_fraction=0.1,
                        n_iter_no_change=15, random_state=random_state)
    return Pipeline([("scaler", StandardScaler()), ("mlp", mlp)])


def fit_pipeline(X: np.ndarray, y: Sequence[str], *, random_state: int = 0, **params):
    """Fit :func:`make_pipeline` on rows ``X [shape=(n, n_features)]`` with string labels ``y``."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    model = make_pipeline(random_state=random_state, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # early stopping decides, not max_iter
        model.fit(X, np.asarray(y))
    return model


def search_params(
    X: np.ndarray,
    y: Sequence[str],
    groups: Sequence[str],
    *,
    space: dict | None = None,
    n_iter: int = 8,
    n_splits: int = 3,
    seed: int = 0,
    n_jobs: int = -1,
) -> dict:
    """Best parameters by macro F1 under speaker-grouped CV of the given (training) rows only.

    Parameters
    ----------
    X : np.ndarray [shape=(n, n_features)]
    y : labels, one per row
    groups : speaker of each row (augmented copies carry their clip's speaker)
    n_iter : int
        Random candidates drawn from ``space`` (:data:`SEARCH_SPACE` by default).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GroupKFold, RandomizedSearchCV

    space = SEARCH_SPACE if space is None else space
    n_splits = min(n_splits, len(set(groups)))
    grid = {f"mlp__{k}": v for k, v in space.items()}
    search = RandomizedSearchCV(make_pipeline(random_state=seed), grid, n_iter=n_iter, scoring="f1_macro",
                                cv=GroupKFold(n_splits=n_splits), random_state=seed, n_jobs=n_jobs,
                                refit=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, np.asarray(y), groups=np.asarray(groups))
    best = {k.removeprefix("mlp__"): v for k, v in search.best_params_.items()}
    best["hidden_layer_sizes"] = list(best["hidden_layer_sizes"])
    return best


def load_pipeline(path) -> "Pipeline":
    """Load a saved pipeline from skops, trusting exactly :data:`TRUSTED_SKOPS_TYPES`.

    Refuses (``ModelError``) a file needing any other type, a damaged file, and anything that is
    not a ``Pipeline`` ending in an ``MLPClassifier``.
    """
    import skops.io as sio
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline

    from .errors import ModelError

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as e:  # a damaged archive: skops raises several kinds
        raise ModelError(f"{path} cannot be read as a skops file ({type(e).__name__}: {e}).") from None
    unexpected = sorted(set(untrusted) - set(TRUSTED_SKOPS_TYPES))
    if unexpected:
        raise ModelError(f"{path} needs types outside ser's trusted list {TRUSTED_SKOPS_TYPES}: {unexpected}; "
                         "refusing to load it.")
    try:
        model = sio.load(path, trusted=TRUSTED_SKOPS_TYPES)
    except Exception as e:
        raise ModelError(f"{path} could not be loaded ({type(e).__name__}: {e}).") from None
    if not (isinstance(model, Pipeline) and isinstance(model[-1], MLPClassifier)):
        raise ModelError(f"{path} holds a {type(model).__name__}, not a Pipeline ending in an MLPClassifier.")
    return model
