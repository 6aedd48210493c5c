"""softreg: softmax classifiers from first principles (the d2l softmax-regression chapter).

The public surface is listed in ``__all__``; importing softreg needs NumPy only.

    >>> import softreg
    >>> data = softreg.load_dataset("fashion-mnist")
    >>> model = softreg.SoftmaxRegression()
    >>> result = softreg.fit(model, (data.X_train, data.y_train), (data.X_test, data.y_test))
    >>> result.history.final.test_acc  # doctest: +SKIP
"""

__version__ = "0.1.0"

from softreg.build import init_state, make_model
from softreg.callbacks import Callback
from softreg.config import TrainConfig
from softreg.data import Dataset, load_dataset, text_labels
from softreg.errors import (
    ConfigError,
    DataValueError,
    DivergenceError,
    MissingDependencyError,
    ModelFileError,
    RunDirError,
    SoftregError,
)
from softreg.evaluation import evaluate
from softreg.history import EpochRecord, Evaluation, FitResult, History, StepRecord, TrainState
from softreg.models import MLP, SoftmaxRegression
from softreg.ops import (
    accuracy,
    count_correct,
    cross_entropy,
    cross_entropy_naive,
    cross_entropy_with_grad,
    log_softmax,
    logsumexp,
    nll_loss,
    one_hot,
    softmax,
    softmax_naive,
)
from softreg.optim import SGD
from softreg.train import fit

__all__ = [
    "MLP",
    "SGD",
    "Callback",
    "ConfigError",
    "DataValueError",
    "Dataset",
    "DivergenceError",
    "EpochRecord",
    "Evaluation",
    "FitResult",
    "History",
    "MissingDependencyError",
    "ModelFileError",
    "RunDirError",
    "SoftmaxRegression",
    "SoftregError",
    "StepRecord",
    "TrainConfig",
    "TrainState",
    "__version__",
    "accuracy",
    "count_correct",
    "cross_entropy",
    "cross_entropy_naive",
    "cross_entropy_with_grad",
    "evaluate",
    "fit",
    "init_state",
    "load_dataset",
    "log_softmax",
    "logsumexp",
    "make_model",
    "nll_loss",
    "one_hot",
    "resume_run",
    "softmax",
    "softmax_naive",
    "text_labels",
    "train_run",
]


# The scikit-learn estimators (softreg.estimators) need scikit-learn, the softreg[sklearn]
# extra, so they are imported on first access; they stay out of __all__ so that
# ``from softreg import *`` works without it.
_ESTIMATORS = ("MLPClassifier", "SoftmaxRegressionClassifier")


def __getattr__(name: str):
    if name in _ESTIMATORS:
        from softreg import estimators  # MissingDependencyError without scikit-learn

        return getattr(estimators, name)
    raise AttributeError(f"module 'softreg' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_ESTIMATORS])


def resume_run(*args, **kwargs):
    """Continue a stopped run (see :func:`softreg.runs.resume_run`); imported lazily."""
    from softreg.runs import resume_run as _resume_run

    return _resume_run(*args, **kwargs)


def train_run(*args, **kwargs):
    """The main job (see :func:`softreg.runs.train_run`); imported lazily."""
    from softreg.runs import train_run as _train_run

    return _train_run(*args, **kwargs)
