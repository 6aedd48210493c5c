"""softreg: softmax classifiers from first principles (the d2l softmax-regression chapter).

The public surface is listed in ``__all__``; importing softreg needs NumPy only.

    >>> import softreg
    >>> data = softreg.load_dataset("fashion-mnist")
    >>> model = softreg.SoftmaxRegression()
    >>> result = softreg.fit(model, (data.X_train, data.y_train), (data.X_test, data.y_test))
    >>> result.history.final.test_acc  # doctest: +SKIP
"""

__version__ = "0.1.0"

import importlib
from typing import TYPE_CHECKING, Any

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
    "Checkpoint",
    "ConfigError",
    "DataValueError",
    "Dataset",
    "DivergenceError",
    "EpochRecord",
    "Evaluation",
    "LoadedModel",
    "FitResult",
    "History",
    "MissingDependencyError",
    "ModelFileError",
    "RunDirError",
    "SoftmaxRegression",
    "SoftregError",
    "StepRecord",
    "RunOptions",
    "RunResult",
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
    "load_checkpoint",
    "load_dataset",
    "load_model",
    "log_softmax",
    "logsumexp",
    "make_model",
    "nll_loss",
    "one_hot",
    "resume_run",
    "save_checkpoint",
    "save_model",
    "softmax",
    "softmax_naive",
    "text_labels",
    "train_run",
]


# Imported on first access, so that ``import softreg`` stays light: the run-directory layer
# (softreg.runs) and the model files (softreg.checkpoint), which need only NumPy, and the
# scikit-learn estimators (softreg.estimators), which need the softreg[sklearn] extra and so
# stay out of __all__ (``from softreg import *`` works without scikit-learn). The objects
# returned are the real ones, with their own signatures and docstrings.
_LAZY = {
    "RunOptions": "softreg.run_options",
    "RunResult": "softreg.runs",
    "resume_run": "softreg.runs",
    "train_run": "softreg.runs",
    "Checkpoint": "softreg.checkpoint",
    "LoadedModel": "softreg.checkpoint",
    "load_checkpoint": "softreg.checkpoint",
    "save_checkpoint": "softreg.checkpoint",
    "load_model": "softreg.checkpoint",
    "save_model": "softreg.checkpoint",
    "MLPClassifier": "softreg.estimators",
    "SoftmaxRegressionClassifier": "softreg.estimators",
}

if TYPE_CHECKING:  # what IDEs and type checkers see
    from softreg.checkpoint import (
        Checkpoint,
        LoadedModel,
        load_checkpoint,
        load_model,
        save_checkpoint,
        save_model,
    )
    from softreg.estimators import MLPClassifier as MLPClassifier
    from softreg.estimators import (
        SoftmaxRegressionClassifier as SoftmaxRegressionClassifier,
    )
    from softreg.run_options import RunOptions
    from softreg.runs import RunResult, resume_run, train_run


def __getattr__(name: str) -> Any:
    """Import the lazily loaded public names on first access."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'softreg' has no attribute {name!r}")


def __dir__() -> list[str]:
    """List the public names, the lazily loaded ones included."""
    return sorted([*globals(), *_LAZY])
