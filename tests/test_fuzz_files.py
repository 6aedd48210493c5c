"""Fuzzing the readers of outside bytes: model files, checkpoints and run configurations.

Generated with Hypothesis, one test each (``tests/test_bad_input.py`` has the hand-written
cases):

1. model files whose header or tensors were edited and the checksum recomputed, so that the
   content checks, not the checksum, must catch them: any field, at any depth, replaced by
   an arbitrary JSON value or nudged (off by one, huge, another type), deleted, or a field
   added; tensors of another dtype or shape, holding NaN or infinity, missing or extra;
2. the same for checkpoints (training configuration, position, history, checkpoint_every,
   optimiser and epoch tensors); a checkpoint that loads is trained on;
3. raw bytes of valid files flipped, cut, inserted and appended; safetensors files crafted
   byte by byte (length field, data offsets, shapes, dtypes, files too short for what they
   declare, sparse files declaring more than the memory there is);
4. the header's JSON text itself: other structures, deep nesting, NaN and Infinity, escaped
   lone surrogates and control characters, truncation, floods of small containers;
5. a run directory's config.json: arbitrary bytes, TrainConfig's fields (and others) with
   arbitrary values, deep nesting, invalid UTF-8, files too large.

The property, for every generated file: the reader returns something consistent (parameters
of the declared shapes, float32 and finite; printable, distinct class names; a TrainConfig;
a checkpoint that training goes on from, or refuses with a SoftregError) or raises
ModelFileError (RunDirError for config.json) whose message is one line starting with the
file's path. Never another exception, never a warning, and never more memory (traced by
tracemalloc, which sees NumPy's buffers) than a small multiple of the file's size plus SLACK,
with the memory available pretended to be MEMORY so that large declarations are refused at
once, whatever size they declare.

The last section holds the smallest cases these tests found that once broke the property,
kept as regression tests.
"""

from __future__ import annotations

import copy
import json
import math
import re
import struct
import tempfile
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

import hypothesis
import numpy as np
import pytest
from _helpers import read_softreg_file, write_softreg_file
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from safetensors.numpy import save as safetensors_bytes

import softreg
from softreg import limits
from softreg.build import make_model
from softreg.callbacks import Callback
from softreg.checkpoint import Checkpoint, load_checkpoint, load_model, save_checkpoint, save_model
from softreg.config import TrainConfig
from softreg.data.batching import epoch_permutation
from softreg.errors import ModelFileError, RunDirError, SoftregError
from softreg.fileio import canonical_json
from softreg.history import History, TrainState
from softreg.models import MLP, SoftmaxRegression
from softreg.run_files import MAX_CONFIG_BYTES, read_run_config

MEMORY = 32_000_000  # what the tests pretend is available (softreg.limits.available_memory)
SLACK = 8_000_000  # traced memory a reader may use beyond COPIES times the size of the file
COPIES = 3  # a header's JSON text is held as read, as parsed, and re-serialised for its checksum
NAMES = ("t-shirt", "trouser", "bag")
N_ROWS = 12  # rows of the data checkpoints are made with, and trained on after loading
FUZZ = settings(
    deadline=None,
    database=None,
    max_examples=300,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def event(value: str) -> None:
    """Hypothesis's statistics of the examples; nothing outside a Hypothesis test."""
    if currently_in_test_context():  # lone surrogates would break its report
        hypothesis.event(value.encode("utf-8", "backslashreplace").decode())


@pytest.fixture(autouse=True)
def little_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend MEMORY is available (check_fits_in_memory looks it up at each call)."""
    monkeypatch.setattr(limits, "available_memory", lambda: MEMORY)


# --- the property ---------------------------------------------------------------------------


def checked_call(
    call: Callable[[], Any], path: Path, error: type[SoftregError], *, budget: int | None = None
) -> Any:
    """``call()``'s result, or None when it raised ``error``; any other exception propagates.

    Asserts the property: no warning, traced memory at most COPIES times the file's size (or
    ``budget``) plus SLACK, and an error message of one line that starts with ``path``.
    """
    budget = COPIES * (path.stat().st_size if budget is None else budget) + SLACK
    tracemalloc.start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result, refusal = call(), None
            except error as exc:
                result, refusal = None, exc
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not caught, [f"{w.category.__name__}: {w.message}" for w in caught]
    assert peak <= budget, f"traced {peak:,} bytes reading a file of {path.stat().st_size:,}"
    if refusal is None:
        event("accepted")
        return result
    message = str(refusal)
    assert "\n" not in message and "\r" not in message, message
    assert message.startswith(f"{path}: "), message
    # The kind of refusal, without numbers and values: Hypothesis's statistics.
    kind = re.sub(r"\d+", "N", message.removeprefix(f"{path}: ").split(", got ")[0])
    event("refused: " + re.sub(r"'.*?'|\[.*\]|\{.*\}|\(.*\)", "...", kind)[:60])
    return None


def check_loaded_model(
    model: Any, params: dict[str, np.ndarray], class_names: tuple[str, ...]
) -> None:
    """What a loaded model must be, whatever its file said."""
    shapes = model.param_shapes()
    assert set(params) == set(shapes)
    for name, value in params.items():
        assert isinstance(value, np.ndarray) and value.dtype == np.float32
        assert value.shape == shapes[name] and np.isfinite(value).all(), name
    assert len(class_names) == model.num_outputs == len(set(class_names))
    assert all(isinstance(n, str) and 0 < len(n) <= 64 and n.isprintable() for n in class_names)
    for array in (model.input_mean, model.input_scale):
        assert array.dtype == np.float32 and array.shape in ((), (model.num_inputs,))
        assert np.isfinite(array).all()
    assert (model.input_scale > 0).all()


# --- valid files to start from --------------------------------------------------------------


class Base:
    """A valid file: its bytes, and its softreg header and tensors."""

    def __init__(
        self, name: str, data: bytes, header: dict[str, Any], tensors: dict[str, np.ndarray]
    ):
        self.name, self.data, self.header, self.tensors = name, data, header, tensors

    def __repr__(self) -> str:  # what Hypothesis prints of a failing example
        return f"Base({self.name!r})"


def _read_back(name: str, path: Path) -> Base:
    header, tensors = read_softreg_file(path)
    return Base(name, path.read_bytes(), header, tensors)


@cache
def model_files() -> tuple[Base, ...]:
    """Small models of both kinds, without, with scalar and with per-feature standardisation."""
    per_feature = {"input_mean": np.linspace(-1, 1, 4), "input_scale": [0.5, 1.0, 2.0, 4.0]}
    models = {
        "softmax-regression": SoftmaxRegression(num_inputs=4, num_outputs=3),
        "softmax-regression, per-feature": SoftmaxRegression(
            num_inputs=4, num_outputs=3, **per_feature
        ),
        "mlp, scalar": MLP(
            num_inputs=4, hidden=(5,), num_outputs=3, input_mean=0.25, input_scale=2.0
        ),
        "mlp 2 layers, per-feature": MLP(num_inputs=4, hidden=(5, 2), num_outputs=3, **per_feature),
    }
    bases = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, model) in enumerate(models.items()):
            path = save_model(
                Path(tmp, f"{i}.safetensors"),
                model,
                model.init(np.random.default_rng(i)),
                class_names=NAMES,
                metadata={"dataset": "toy", "seed": i},
            )
            load_model(path)  # valid, and the imports are done before anything is traced
            bases.append(_read_back(name, path))
    return tuple(bases)


class _Snapshots(Callback):
    """Every state ``fit`` hands out, mid-epoch (checkpoints) and between epochs."""

    def __init__(self) -> None:
        self.states: list[tuple[TrainState, History]] = []

    def on_checkpoint(self, state: TrainState, history: History) -> None:
        self.states.append((state, History(list(history.records), list(history.steps))))

    def on_epoch_end(self, record: Any, history: History, state: TrainState) -> None:
        self.states.append((state, History(list(history.records), list(history.steps))))


def toy_data(num_inputs: int, num_outputs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N_ROWS, num_inputs)).astype(np.float32)
    return X, np.arange(N_ROWS) % num_outputs


@cache
def checkpoint_files() -> tuple[Base, ...]:
    """Checkpoints of real runs: mid-epoch (epoch sums, data order) and between epochs, with
    and without momentum buffers, of both models, at the start, middle and end of a run."""
    X, y = toy_data(4, len(NAMES))
    runs = {
        "softmax-regression": (
            TrainConfig(dataset="toy", epochs=3, batch_size=4, log_every=1),
            (X, y),
        ),
        "mlp, momentum, cosine": (
            TrainConfig(
                dataset="toy",
                model="mlp",
                hidden=(5,),
                epochs=3,
                batch_size=5,
                momentum=0.5,
                lr_schedule="cosine",
                normalize="per-feature",
                log_every=2,
            ),
            (X, y),
        ),
        "softmax-regression, gd": (
            TrainConfig(dataset="toy", optimizer="gd", epochs=2, momentum=0.9, normalize="yes"),
            None,
        ),
    }
    bases = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (config, test) in runs.items():
            model = make_model(config, X, len(NAMES))
            snapshots = _Snapshots()
            softreg.fit(model, (X, y), test, config, callbacks=[snapshots], checkpoint_every=2)
            chosen = {}  # one state of each kind
            for state, history in snapshots.states:
                where = (
                    "mid-epoch"
                    if state.batch
                    else "end of run"
                    if state.epoch == config.epochs
                    else "between epochs"
                )
                if where not in chosen or (where == "mid-epoch" and state.epoch):
                    chosen[where] = state, history
            for where, (state, history) in chosen.items():
                order = (
                    epoch_permutation(N_ROWS, seed=config.seed, epoch=state.epoch)
                    if config.optimizer == "sgd" and state.epoch < config.epochs
                    else None
                )
                path = save_checkpoint(
                    Path(tmp, f"{len(bases)}.safetensors"),
                    Checkpoint(
                        model,
                        state,
                        history,
                        config=config,
                        class_names=NAMES,
                        data_order=order,
                        checkpoint_every=2,
                        metadata={"dataset": "toy"},
                    ),
                )
                load_checkpoint(path)
                bases.append(_read_back(f"{name}, {where}", path))
    return tuple(bases)


# --- JSON values, and edits of a header -----------------------------------------------------

HUGE_INTS = [
    2**31,
    2**32 + 1,
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64,
    10**30,
    10**400,
    -(2**63),
    -(10**400),
]
ODD_CHARS = "\x00\x01\x07\t\n\r\x1b\x7f\x85\xa0\u2028\u2029\ufeff\ud800\udfff\"\\/'é€😀 a"
WORDS = [
    "",
    " ",
    "NaN",
    "Infinity",
    "-Infinity",
    "nan",
    "inf",
    "1e400",
    "-1",
    "0",
    "null",
    "true",
    "mlp",
    "softmax-regression",
    "numpy",
    "torch",
    "cuda",
    "sgd",
    "gd",
    "cosine",
    "per-feature",
    "naive",
    "model",
    "checkpoint",
    "a\nb",
    "\u2028",
    "\ud800",
]
json_ints = st.integers(-3, 3) | st.integers() | st.sampled_from(HUGE_INTS)
json_floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [1e308, -1e308, 5e-324, -0.0, 0.5, 1.0000001, 1.5, 3.0]
)
long_text = st.builds(
    lambda s, n: (s * n)[:n],
    st.text(ODD_CHARS, min_size=1, max_size=3),
    st.sampled_from([65, 257, 5000, 100_000]),
)
json_text = (
    st.text(max_size=12) | st.text(ODD_CHARS, max_size=8) | st.sampled_from(WORDS) | long_text
)
json_leaves = st.none() | st.booleans() | json_ints | json_floats | json_text


short_text = st.text(max_size=8) | st.text(ODD_CHARS, max_size=4) | st.sampled_from(WORDS)


def json_trees(leaves: st.SearchStrategy, keys: st.SearchStrategy) -> st.SearchStrategy:
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4)
        ),
        max_leaves=10,
    )


# Any JSON value; sometimes a long list of one small value (up to some 100 kB of JSON).
json_values = json_trees(json_leaves, json_text) | st.builds(
    lambda value, n: [value] * n,
    json_trees(st.none() | st.booleans() | json_ints | json_floats | short_text, short_text),
    st.sampled_from([100, 1000]),
)

FIELD_NAMES = sorted(
    {
        "kind",
        "format",
        "model",
        "type",
        "config",
        "class_names",
        "metadata",
        "sha256",
        "num_inputs",
        "num_outputs",
        "sigma",
        "hidden",
        "input_mean",
        "input_scale",
        "train_config",
        "position",
        "history",
        "checkpoint_every",
        "epoch",
        "step",
        "batch",
        "logged",
        "seconds",
        "records",
        "steps",
        "train_loss",
        "train_acc",
        "test_acc",
        "test_loss",
        "running_loss",
        "__metadata__",
        *(f.name for f in fields(TrainConfig)),
    }
)
json_keys = st.sampled_from(FIELD_NAMES) | json_text

Key = str | int


def leaf_paths(obj: Any, prefix: tuple[Key, ...]) -> list[tuple[Key, ...]]:
    """The paths to the numbers, strings, booleans and nulls inside ``obj`` (in the first 12
    items of each list)."""
    items = (
        list(obj.items())
        if isinstance(obj, dict)
        else list(enumerate(obj))[:12]
        if isinstance(obj, list)
        else []
    )
    return [
        leaf
        for key, child in items
        for leaf in (
            leaf_paths(child, (*prefix, key))
            if isinstance(child, (dict, list))
            else [(*prefix, key)]
        )
    ]


def draw_path(draw: st.DrawFn, obj: dict[str, Any], focus: tuple[str, ...] = ()) -> tuple[Key, ...]:
    """A path (keys and indices) from the root of ``obj`` down to some value inside it, under
    one of the top-level keys ``focus`` preferably: half the time any scalar under one such
    key, else a walk down that stops at each step as likely as it goes on. ``()`` when
    ``obj`` is empty."""
    tops = [k for k in obj if k in focus] or list(obj)
    if tops and draw(st.booleans()):
        top = draw(st.sampled_from(tops))
        return draw(st.sampled_from(leaf_paths(obj[top], (top,)) or [(top,)]))
    path: tuple[Key, ...] = ()
    while True:
        keys = (
            list(obj)
            if isinstance(obj, dict)
            else list(range(min(len(obj), 12)))
            if isinstance(obj, list)
            else []
        )
        if not path:
            keys = [k for k in keys if k in focus] or keys
        if not keys or (path and draw(st.integers(0, 2)) == 0):
            return path
        key = draw(st.sampled_from(keys))
        path, obj = (*path, key), obj[key]


def at(obj: Any, path: tuple[Key, ...]) -> Any:
    for key in path:
        obj = obj[key]
    return obj


# Numbers beyond float64, and within it but not within int64 or float32.
HUGE_NUMBERS = st.sampled_from([10**400, -(10**400), 2**1024, 10**4000]) | st.sampled_from(
    [*HUGE_INTS, 1e308, -1e308, 3.5e38]
)


def nudged(value: Any) -> st.SearchStrategy:
    """Values near ``value``: off by one, zero, negative, huge, of a neighbouring type."""
    if isinstance(value, bool):
        return st.sampled_from([not value, int(value), str(value).lower(), None])
    if isinstance(value, int):
        as_float = [float(value)] if abs(value) < 2**1000 else []
        return (
            st.sampled_from(
                [
                    value - 1,
                    value + 1,
                    0,
                    -1,
                    -value,
                    2 * value,
                    value * 2**20,
                    *as_float,
                    str(value),
                    True,
                    None,
                ]
            )
            | st.integers(0, 2 * N_ROWS)
            | HUGE_NUMBERS
        )
    if isinstance(value, float):
        near = [
            -value,
            value + 1,
            value * 2,
            value / 3,
            0.0,
            -0.0,
            1.0,
            1.0000001,
            2.0,
            1e308,
            5e-324,
            round(value),
            str(value),
            "NaN",
            "Infinity",
            None,
        ]
        finite = [v for v in near if not isinstance(v, float) or math.isfinite(v)]
        return st.sampled_from(finite) | HUGE_NUMBERS
    if isinstance(value, str):
        return st.sampled_from(
            [
                value.upper(),
                value + " ",
                "",
                value * 100,
                value + "\n",
                value + "\x00",
                value + "\ud800",
                value[:1],
                [value],
                None,
            ]
        )
    if isinstance(value, list):
        longer = [value * 1000] if len(canonical_json(value)) <= 1000 else []
        return st.sampled_from(
            [
                [],
                value[:-1],
                value + value[-1:],
                value[::-1],
                value * 2,
                *longer,
                [value],
                value + [None],
                {},
                None,
            ]
        )
    if isinstance(value, dict):
        return st.sampled_from(
            [
                {},
                list(value),
                {k: None for k in value},
                {k: [v] for k, v in value.items()},
                [value],
                None,
            ]
        )
    return st.sampled_from([0, "", [], {}, False, "null"])


def fresh(value: Any) -> Any:
    """A copy of ``value`` whose parts are all distinct objects (``[x] * n`` holds one ``x``
    n times, which a later edit of one would change everywhere)."""
    return json.loads(canonical_json(value))


def edit_header(draw: st.DrawFn, header: dict[str, Any], focus: tuple[str, ...] = ()) -> str:
    """Change ``header`` in place, one edit, preferably of a field under one of the
    top-level keys ``focus``; returns what it did."""
    path = draw_path(draw, header, focus)
    action = draw(st.sampled_from(["replace", "nudge", "nudge", "delete", "add", "rename"]))
    if action == "add" or not path:
        while path and not isinstance(at(header, path), (dict, list)):
            path = path[:-1]
        node, value = at(header, path), fresh(draw(json_values))
        if isinstance(node, dict):
            key = draw(json_keys)
            node[key] = value
        else:
            key = draw(st.integers(0, len(node)))
            node.insert(key, value)
        return f"add {[*path, key]!r:.80} = {value!r:.60}"
    parent, key = at(header, path[:-1]), path[-1]
    if action == "rename" and isinstance(parent, dict):
        new_key = draw(json_keys)
        parent[new_key] = parent.pop(key)
        return f"rename {list(path)!r:.80} to {new_key!r:.40}"
    if action in ("delete", "rename"):
        del parent[key]
        return f"delete {list(path)!r:.80}"
    parent[key] = fresh(draw(json_values if action == "replace" else nudged(parent[key])))
    return f"{action} {list(path)!r:.80} = {parent[key]!r:.60}"


# --- edits of tensors -----------------------------------------------------------------------

DTYPES = [np.float64, np.float16, np.int32, np.uint8, np.int64, np.bool_, np.float32]
TENSOR_NAMES = [
    "W",
    "b",
    "W1",
    "b1",
    "W3",
    "b0",
    "input_mean",
    "input_scale",
    "params.W",
    "params.W1",
    "opt.momentum.W",
    "opt.momentum.b1",
    "opt.other.W",
    "epoch_sums.loss",
    "epoch_sums.correct",
    "epoch_sums.extra",
    "data_order",
    "",
    "__metadata__",
    "W\nb",
]


def reshaped(draw: st.DrawFn, t: np.ndarray) -> np.ndarray:
    """``t`` with a dimension added or removed, or a size changed (to 0 maybe)."""
    how = draw(st.sampled_from(["add", "remove", "resize"]))
    if how == "add":
        return t.reshape((*t.shape, 1) if draw(st.booleans()) else (1, *t.shape))
    if how == "remove" or t.ndim == 0:
        return t.reshape(-1)[:1].reshape(()) if t.ndim <= 1 else t.reshape(-1, t.shape[-1])[0]
    axis = draw(st.integers(0, t.ndim - 1))
    shape = list(t.shape)
    shape[axis] = max(0, shape[axis] + draw(st.sampled_from([-1, 1, 2, -shape[axis]])))
    return np.resize(t, shape)


def edit_tensors(draw: st.DrawFn, tensors: dict[str, np.ndarray]) -> str:
    """Change ``tensors`` in place, one edit; returns what it did."""
    names = sorted(tensors)
    action = draw(st.sampled_from(["dtype", "shape", "value", "value", "remove", "add"]))
    if action == "add" or not names:
        name = draw(
            st.sampled_from(TENSOR_NAMES)
            | st.text(max_size=6)
            | st.text(ODD_CHARS.replace("\ud800", "").replace("\udfff", ""), max_size=4)
        )
        like = tensors[draw(st.sampled_from(names))] if names else np.zeros(3, np.float32)
        with np.errstate(all="ignore"):
            tensors[name] = np.ascontiguousarray(like.astype(draw(st.sampled_from(DTYPES))))
        return f"add tensor {name!r} {tensors[name].dtype} {tensors[name].shape}"
    name = draw(st.sampled_from(names))
    t = tensors[name]
    if action == "remove":
        del tensors[name]
        return f"remove tensor {name}"
    with np.errstate(all="ignore"):
        if action == "dtype":
            t = t.astype(draw(st.sampled_from(DTYPES)))
        elif action == "shape":
            t = reshaped(draw, t)
        elif t.size:
            t = t.copy()
            bad = (
                [np.nan, np.inf, -np.inf, 0.0, -1.0, -0.0, 1e38, 1e-45]
                if t.dtype.kind == "f"
                else [-1, 0, N_ROWS, 2**31 - 1, -(2**31)]
            )
            value = np.asarray(draw(st.sampled_from(bad))).astype(t.dtype)  # wraps around
            t.reshape(-1)[draw(st.integers(0, t.size - 1))] = value
    tensors[name] = np.ascontiguousarray(t)
    return f"{action} of tensor {name}: {t.dtype} {t.shape}"


class Edited:
    """A base file's header and tensors after edits, and what they were."""

    def __init__(self, base: Base, header: dict[str, Any], tensors: dict[str, np.ndarray]):
        self.base, self.header, self.tensors = base, header, tensors
        self.edits: list[str] = []

    def __repr__(self) -> str:  # short: the header may hold a long list
        return f"Edited({self.base!r}, edits={self.edits!r})"


@st.composite
def edited_files(
    draw: st.DrawFn,
    bases: Callable[[], tuple[Base, ...]],
    focus: tuple[str, ...] = (),
    special: Callable[[st.DrawFn, dict[str, Any]], str] | None = None,
) -> Edited:
    """One of the ``bases()`` files' header and tensors after one to three edits (of the
    header, of the tensors, or ``special`` ones of the header)."""
    base = draw(st.sampled_from(bases()))
    case = Edited(base, copy.deepcopy(base.header), dict(base.tensors))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["header", "header", "tensors", "special"]))
        if kind == "tensors":
            edit = edit_tensors(draw, case.tensors)
        elif kind == "special" and special is not None:
            edit = special(draw, case.header)
        else:
            edit = edit_header(draw, case.header, focus)
        case.edits.append(edit[:200])
    return case


# --- 1. model files: the header's content and the tensors, with a valid checksum ------------


def load_edited(case: Edited, name: str, load: Callable[[Path], Any]) -> Any:
    """``case`` written as file ``name`` (with a valid checksum) and read back by ``load``:
    what it returns, or None when it refused the file as the property allows."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, name)
        write_softreg_file(path, case.header, case.tensors)
        return checked_call(lambda: load(path), path, ModelFileError)


@FUZZ
@given(case=edited_files(model_files))
@pytest.mark.slow
def test_model_file_with_edited_content(case: Edited) -> None:
    loaded = load_edited(case, "model.safetensors", load_model)
    if loaded is not None:
        check_loaded_model(loaded.model, loaded.params, loaded.class_names)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in loaded.metadata.items())


# --- 2. checkpoints: the same, then training goes on from them ------------------------------

CHECKPOINT_FIELDS = ("train_config", "position", "history", "checkpoint_every")


def check_loaded_checkpoint(ckpt: Any) -> None:
    state = ckpt.state
    check_loaded_model(ckpt.model, state.params, ckpt.class_names)
    assert isinstance(ckpt.config, TrainConfig)
    assert 0 <= state.epoch <= ckpt.config.epochs and state.step >= 0 and state.batch >= 0
    assert [r.epoch for r in ckpt.history.records] == list(range(1, state.epoch + 1))
    momentum = state.opt_state.get("momentum", {})
    assert set(momentum) == (set(state.params) if ckpt.config.momentum else set())
    for name, buffer in momentum.items():
        assert buffer.shape == state.params[name].shape and np.isfinite(buffer).all()
    assert (state.epoch_sums is not None) == (state.batch > 0)
    assert isinstance(ckpt.checkpoint_every, int) and ckpt.checkpoint_every >= 0


def train_from(ckpt: Any) -> None:
    """Go on training from a checkpoint that loaded, on tiny data of the model's shape: it
    trains or raises a SoftregError (the state may belong to another run), nothing else."""
    config, model = ckpt.config, ckpt.model
    if (
        config.backend not in ("numpy", "array-api-strict")
        or config.device != "cpu"
        or config.epochs - ckpt.state.epoch > 3
        or model.num_inputs > 64
        or model.num_outputs > 64
        or sum(getattr(model, "hidden", ())) > 256
    ):
        event("not trained on (another backend, or too large)")
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            softreg.fit(
                model,
                toy_data(model.num_inputs, model.num_outputs),
                None,
                config,
                state=ckpt.state,
                history=ckpt.history,
            )
            event("trained on")
        except SoftregError as exc:
            event(f"training refused: {type(exc).__name__}")
    assert not caught, [f"{w.category.__name__}: {w.message}" for w in caught]


def edit_run_length(draw: st.DrawFn, header: dict[str, Any]) -> str:
    """A run of more epochs, and a position further into it than the history goes."""
    config, position = header.get("train_config"), header.get("position")
    if not (isinstance(config, dict) and isinstance(position, dict)):
        return "no run length to edit"
    config["epochs"] = draw(st.sampled_from([1, 2, 3, 4, 1000, 2**31, 2**63, 10**30]))
    # Not beyond a million: a list of that many epochs is what the test can afford.
    position["epoch"] = min(config["epochs"], draw(st.sampled_from([0, 1, 2, 3, 1000, 1_000_000])))
    return f"run length: epoch {position['epoch']} of {config['epochs']}"


@settings(FUZZ, max_examples=400)
@given(case=edited_files(checkpoint_files, focus=CHECKPOINT_FIELDS, special=edit_run_length))
def test_checkpoint_with_edited_content(case: Edited) -> None:
    ckpt = load_edited(case, "checkpoint.safetensors", load_checkpoint)
    if ckpt is not None:
        check_loaded_checkpoint(ckpt)
        train_from(ckpt)


# --- 3. raw bytes -----------------------------------------------------------------------------


class FileBytes:
    """A generated file's bytes, and how they were made."""

    def __init__(self, how: str, data: bytes):
        self.how, self.data = how, data

    def __repr__(self) -> str:  # short: the bytes may be many
        return (
            f"FileBytes({self.how!r}, {self.data[:300]!r}"
            f"{'...' if len(self.data) > 300 else ''}, {len(self.data):,} bytes)"
        )


def sometimes(draw: st.DrawFn, usual: st.SearchStrategy, rare: st.SearchStrategy) -> Any:
    """Mostly a value from ``usual``; one time in four, one from ``rare``."""
    return draw(rare if draw(st.integers(0, 3)) == 0 else usual)


@st.composite
def damaged_bytes(draw: st.DrawFn) -> FileBytes:
    """A valid file's bytes with bytes flipped, inserted, cut or appended."""
    base = draw(st.sampled_from(model_files() + checkpoint_files()))
    data = bytearray(base.data)
    header_end = 8 + struct.unpack("<Q", data[:8])[0]
    for _ in range(draw(st.integers(0, 3))):  # in the length field, the JSON or the tensors
        at_ = draw(st.integers(0, 7) | st.integers(8, header_end) | st.integers(0, len(data) - 1))
        data[min(at_, len(data) - 1)] ^= draw(st.integers(1, 255))
    if draw(st.booleans()):
        at_ = draw(st.integers(0, len(data)))
        data[at_:at_] = draw(st.binary(min_size=1, max_size=16))
    cut = sometimes(draw, st.none(), st.integers(0, len(data)))
    data = data[:cut]
    data += sometimes(
        draw,
        st.just(b""),
        st.binary(max_size=16) | st.sampled_from([b"\x00" * 8, b" " * 4096, bytes(1_000_000)]),
    )
    return FileBytes(f"damaged {base.name}", bytes(data))


SAFETENSORS_DTYPES = [
    "F32",
    "F64",
    "F16",
    "BF16",
    "I8",
    "U8",
    "I16",
    "I32",
    "U32",
    "I64",
    "U64",
    "BOOL",
    "F8_E4M3",
    "F8_E5M2",
    "f32",
    "",
    "X" * 100,
]
U64 = 2**64 - 1


def crafted_file(
    header: dict[str, Any],
    entries: dict[str, dict[str, Any]],
    length: int | None = None,
    data: bytes = b"",
) -> bytes:
    """A safetensors file written byte by byte: ``length``, the JSON of the softreg ``header``
    and of the tensors' ``entries``, then ``data``."""
    text = json.dumps(
        {"__metadata__": {"softreg": canonical_json(header)}, **entries}, separators=(",", ":")
    ).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


@dataclass
class Crafted:
    data: bytes
    sparse_size: int = 0  # > 0: a sparse file of this size, data at its start
    declared: int = 0  # bytes of tensors declared, when the header asks for them


@st.composite
def crafted_files(draw: st.DrawFn) -> Crafted:
    """A model file whose safetensors header is written by hand, then changed."""
    base = model_files()[0]  # softmax regression, W (4, 3), b (3,), scalars
    header, tensors = copy.deepcopy(base.header), base.tensors
    entries, blobs, offset = {}, [], 0
    for name, t in sorted(tensors.items()):
        entries[name] = {
            "dtype": "F32",
            "shape": list(t.shape),
            "data_offsets": [offset, offset + t.nbytes],
        }
        blobs.append(t.tobytes())
        offset += t.nbytes
    data = b"".join(blobs)
    how = draw(st.sampled_from(["length", "offsets", "shape", "dtype", "huge", "sparse"]))
    event(f"crafted: {how}")
    length = None
    if how == "length":
        true = len(crafted_file(header, entries)) - 8
        length = draw(
            st.sampled_from([0, 1, 7, 8, U64, 2**63, 100_000_001, 2**32 + true])
            | st.integers(true - 16, true + 16)
            | st.integers(0, U64)
        )
    elif how in ("offsets", "shape", "dtype"):
        entry = entries[draw(st.sampled_from(sorted(entries)))]
        if how == "offsets":
            entry["data_offsets"] = draw(st.lists(json_ints | st.integers(0, 80), max_size=3))
        elif how == "shape":
            entry["shape"] = draw(st.lists(st.integers(0, 6) | json_ints, max_size=4))
        else:
            entry["dtype"] = draw(st.sampled_from(SAFETENSORS_DTYPES))
    else:  # a W of num_inputs rows, which the model's header declares too
        num_inputs = draw(
            st.integers(1, MEMORY // 12) | st.integers(MEMORY // 12, 2**31)
            if how == "sparse"
            else st.integers(1, 2**40) | st.sampled_from([2**61, 2**62, 2**64 // 12 + 1, 10**400])
        )
        header["model"]["config"]["num_inputs"] = num_inputs
        nbytes = num_inputs * 12
        shift = nbytes - entries["W"]["data_offsets"][1]
        entries["W"].update(shape=[num_inputs, 3], data_offsets=[0, nbytes])
        for name in ("b", "input_mean", "input_scale"):
            entries[name]["data_offsets"] = [o + shift for o in entries[name]["data_offsets"]]
        if how == "sparse" and nbytes <= 2**34:  # exactly the bytes it declares, mostly holes
            file = crafted_file(header, entries)
            return Crafted(file, sparse_size=len(file) + nbytes + 20, declared=nbytes + 20)
        data = data[: draw(st.integers(0, len(data)))]  # far too short for what it declares
    return Crafted(crafted_file(header, entries, length, data))


@FUZZ
@given(data=damaged_bytes(), as_checkpoint=st.booleans())
def test_damaged_files(data: FileBytes, as_checkpoint: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "damaged.safetensors")
        path.write_bytes(data.data)
        load = load_checkpoint if as_checkpoint else load_model
        result = checked_call(lambda: load(path), path, ModelFileError)
    if result is not None:  # undamaged after all, say cut after its end
        params = result.state.params if as_checkpoint else result.params
        check_loaded_model(result.model, params, result.class_names)


@FUZZ
@given(case=crafted_files())
def test_crafted_safetensors_headers(case: Crafted) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "crafted.safetensors")
        with open(path, "wb") as f:
            f.write(case.data)
            if case.sparse_size:
                f.truncate(case.sparse_size)
        # A sparse file is small on disk: what it declares beyond the memory is not read.
        budget = len(case.data) if case.declared > MEMORY else None
        loaded = checked_call(lambda: load_model(path), path, ModelFileError, budget=budget)
    if loaded is not None:  # the edit changed nothing the checksum covers
        check_loaded_model(loaded.model, loaded.params, loaded.class_names)


# --- 4. the header's JSON text --------------------------------------------------------------

NUMBER = re.compile(r"(?<=[:\[,])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?=[,\]}])")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
CONSTANTS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e400",
    "1e-400",
    "1" * 5000,
    "-0",
    "01",
    "1.",
    ".5",
    "0x10",
    "+1",
    "true",
    "null",
]
ESCAPES = [
    "\\ud800",
    "\\udfff",
    "\\udc00\\ud800",
    "\\u0000",
    "\\u001b",
    "\\n",
    "\\u2028",
    "\\x41",
    "\\u12",
    "\\",
    "\x00",
    "\x1f",
    "\n",
    "\t",
    "\x7f",
    "\u2028",
    "é",
]


def nested(depth: int, kind: str) -> str:
    opener, closer = {"[": ("[", "]"), "{": ('{"a":', "}"), "[{": ('[{"a":', "}]")}[kind]
    return opener * depth + "0" + closer * depth


def floods(n: int, item: str) -> str:
    return "[" + ",".join([item] * n) + "]"


class HeaderText:
    """Text to put in a base file's ``softreg`` metadata entry instead of its header."""

    def __init__(self, base: Base, how: str, text: str):
        self.base, self.how, self.text = base, how, text

    def __repr__(self) -> str:  # short: the text may be long
        return (
            f"HeaderText({self.base!r}, {self.how!r}, {self.text[:300]!r}"
            f"{'...' if len(self.text) > 300 else ''}, {len(self.text):,} characters)"
        )


def _header_text(draw: st.DrawFn, how: str, header: dict[str, Any]) -> str:
    text = canonical_json(header)
    if how == "other":  # valid JSON of another structure, spelt in any way
        value = draw(json_values)
        spelt = json.dumps(value, ensure_ascii=False, indent=draw(st.none() | st.integers(0, 2)))
        utf8 = not any("\ud800" <= c <= "\udfff" for c in spelt)  # else safetensors refuses
        return spelt if utf8 and draw(st.booleans()) else json.dumps(value)
    if how == "nested":
        depth = draw(st.integers(1, 1100) | st.sampled_from([5000, 100_000]))
        value = nested(depth, draw(st.sampled_from(["[", "{", "[{"])))
        if draw(st.booleans()):
            value = value[: draw(st.integers(0, len(value)))]  # unbalanced
        return draw(st.sampled_from([value, text[:-1] + ',"zz":' + value + "}"]))
    if how == "constant":  # one number, or a new field, spelt as JSON does not allow
        constant = draw(st.sampled_from(CONSTANTS))
        numbers = list(NUMBER.finditer(text))
        if numbers and draw(st.booleans()):
            found = draw(st.sampled_from(numbers))
            return text[: found.start()] + constant + text[found.end() :]
        return text[:-1] + f',"{draw(st.sampled_from(FIELD_NAMES))}":{constant}}}'
    if how == "escape":  # inside one of the strings (names, types, the checksum...)
        found = draw(st.sampled_from(list(STRING.finditer(text))))
        at_ = draw(st.integers(found.start() + 1, found.end() - 1))
        return text[:at_] + draw(st.sampled_from(ESCAPES)) + text[at_:]
    if how == "truncated":
        return text[: draw(st.integers(0, len(text) - 1))]
    if how == "reformatted":  # the same content, other bytes: the checksum still holds
        return json.dumps(
            header, indent=draw(st.none() | st.integers(0, 3)), ensure_ascii=draw(st.booleans())
        )
    if how == "extra field":
        key, value = json.dumps(draw(json_keys)), json.dumps(draw(json_values))
        return f"{text[:-1]},{key}:{value}}}"
    n = draw(st.sampled_from([10, 1000, 100_000, 300_000]))
    value = floods(n, draw(st.sampled_from(["{}", "[]", "0", '""', "[[]]", '{"":{}}'])))
    return draw(st.sampled_from([value, text[:-1] + ',"zz":' + value + "}"]))


@st.composite
def header_texts(draw: st.DrawFn) -> HeaderText:
    base = draw(st.sampled_from(model_files() + checkpoint_files()))
    how = draw(
        st.sampled_from(
            [
                "other",
                "nested",
                "constant",
                "escape",
                "truncated",
                "reformatted",
                "extra field",
                "flood",
            ]
        )
    )
    event(f"header text: {how}")
    return HeaderText(base, how, _header_text(draw, how, base.header))


@FUZZ
@given(case=header_texts())
def test_header_json_text(case: HeaderText) -> None:
    base, text = case.base, case.text
    is_model = base.header["kind"] == "model"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "header.safetensors")
        path.write_bytes(safetensors_bytes(base.tensors, metadata={"softreg": text}))
        load = load_model if is_model else load_checkpoint
        loaded = checked_call(lambda: load(path), path, ModelFileError)
    if loaded is not None:
        params = loaded.params if is_model else loaded.state.params
        check_loaded_model(loaded.model, params, loaded.class_names)
        assert json.loads(text, parse_constant=lambda name: pytest.fail(name)) == base.header


# --- 5. config.json ---------------------------------------------------------------------------

INVALID_UTF8 = [
    b"\xff",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xe2\x82",
    b"\xf8\x88\x80\x80\x80",
    b"\x80",
    b"\xfe\xff",
]


@st.composite
def config_files(draw: st.DrawFn) -> FileBytes:
    how = draw(
        st.sampled_from(
            ["bytes", "fields", "fields", "fields", "invalid utf-8", "nested", "large", "flood"]
        )
    )
    event(f"config.json: {how}")
    return FileBytes(how, _config_bytes(draw, how))


def _config_bytes(draw: st.DrawFn, how: str) -> bytes:
    if how == "bytes":
        return draw(st.binary(max_size=64))
    if how == "nested":
        depth = draw(st.integers(1, 1100) | st.sampled_from([5000, 100_000]))
        return nested(depth, draw(st.sampled_from(["[", "{", "[{"]))).encode()
    if how == "large":  # around the limit on its size
        n = MAX_CONFIG_BYTES + draw(st.integers(-8, 8) | st.sampled_from([10**6, 10**7]))
        return b"{" + b" " * (n - 2) + b"}"
    if how == "flood":
        n = draw(st.sampled_from([10, 1000, 100_000, MAX_CONFIG_BYTES // 3 - 1]))
        return floods(n, draw(st.sampled_from(["{}", "[]", "0"]))).encode()
    fields_ = TrainConfig(dataset="toy").to_dict()  # valid, then edited
    for _ in range(draw(st.integers(0, 3))):
        note(edit_header(draw, fields_, ()))
    text = json.dumps(fields_, ensure_ascii=draw(st.booleans()))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "utf-32-be"]))
    data = text.encode(encoding, errors="surrogatepass")
    if how == "invalid utf-8":
        at_ = draw(st.integers(0, len(data)))
        data = data[:at_] + draw(st.sampled_from(INVALID_UTF8)) + data[at_:]
    return data


@settings(FUZZ, max_examples=400)
@given(data=config_files())
def test_run_config(data: FileBytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "config.json")
        path.write_bytes(data.data)
        config = checked_call(lambda: read_run_config(tmp), path, RunDirError)
    if config is not None:
        assert isinstance(config, TrainConfig)


# --- what the tests above found once: the smallest cases, kept --------------------------------


def base_named(name: str) -> Base:
    return next(b for b in model_files() + checkpoint_files() if b.name == name)


def edited_copy(tmp: str, base: Base, path: tuple[Key, ...], value: Any) -> Path:
    """``base`` with ``header[path] = value``, and a valid checksum."""
    header = copy.deepcopy(base.header)
    at(header, path[:-1])[path[-1]] = value
    file = Path(tmp, "edited.safetensors")
    write_softreg_file(file, header, base.tensors)
    return file


def with_header_text(tmp: str, base: Base, text: str) -> Path:
    file = Path(tmp, "text.safetensors")
    file.write_bytes(safetensors_bytes(base.tensors, metadata={"softreg": text}))
    return file


@pytest.mark.parametrize(
    ("name", "path", "value"),
    [
        ("softmax-regression", ("model", "config", "sigma"), 10**400),
        ("softmax-regression", ("model", "config", "input_mean"), 10**400),
        ("softmax-regression, mid-epoch", ("train_config", "lr"), 10**400),
        ("softmax-regression, mid-epoch", ("train_config", "sigma"), 10**400),
        ("softmax-regression, mid-epoch", ("position", "seconds"), 10**400),
        ("softmax-regression, mid-epoch", ("history", "records", 0, "test_loss"), 2**1024),
    ],
    ids=lambda v: ".".join(map(str, v)) if isinstance(v, tuple) else None,
)
def test_found_integer_too_large_for_a_float(name: str, path: tuple[Key, ...], value: int) -> None:
    base = base_named(name)
    load = load_model if base.header["kind"] == "model" else load_checkpoint
    with tempfile.TemporaryDirectory() as tmp:
        file = edited_copy(tmp, base, path, value)
        checked_call(lambda: load(file), file, ModelFileError)


@pytest.mark.parametrize(
    "text", [f'{{"lr": {10**400}}}', f'{{"momentum": {10**400}}}'], ids=["lr", "momentum"]
)
def test_found_run_config_integer_too_large_for_a_float(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "config.json").write_text(text)
        checked_call(lambda: read_run_config(tmp), Path(tmp, "config.json"), RunDirError)


def test_found_run_config_message_of_two_lines() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "config.json").write_text('{"a\\nb": 0}')
        checked_call(lambda: read_run_config(tmp), Path(tmp, "config.json"), RunDirError)


def test_found_tensor_name_with_a_newline() -> None:
    base = base_named("softmax-regression")
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp, "model.safetensors")
        write_softreg_file(file, base.header, {**base.tensors, "a\nb": np.zeros(1, np.float32)})
        checked_call(lambda: load_model(file), file, ModelFileError)


def test_found_out_of_range_number_in_an_unread_header_field() -> None:
    base = base_named("softmax-regression")
    with tempfile.TemporaryDirectory() as tmp:
        file = with_header_text(tmp, base, canonical_json(base.header)[:-1] + ',"x":1e400}')
        checked_call(lambda: load_model(file), file, ModelFileError)


def test_found_nesting_just_within_the_parsers_limit() -> None:
    base = base_named("softmax-regression")
    text = canonical_json(base.header)[:-1] + ',"x":'
    with tempfile.TemporaryDirectory() as tmp:
        for depth in range(500, 1001):
            file = with_header_text(tmp, base, text + nested(depth, "[") + "}")
            checked_call(lambda file=file: load_model(file), file, ModelFileError)


@pytest.mark.parametrize("epoch", [10**6, 10**18, 2**63], ids=["1e6", "1e18", "2**63"])
def test_found_position_epoch_sizes_a_list(epoch: int) -> None:
    base = base_named("softmax-regression, between epochs")
    header = copy.deepcopy(base.header)
    header["train_config"]["epochs"] = header["position"]["epoch"] = epoch
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp, "checkpoint.safetensors")
        write_softreg_file(file, header, base.tensors)
        checked_call(lambda: load_checkpoint(file), file, ModelFileError)


@pytest.mark.parametrize("where", ["model file", "config.json"])
def test_found_json_of_many_small_containers(where: str) -> None:
    flood = floods(MAX_CONFIG_BYTES // 3 - 1, "{}")
    with tempfile.TemporaryDirectory() as tmp:
        if where == "config.json":
            Path(tmp, "config.json").write_text(flood)
            checked_call(lambda: read_run_config(tmp), Path(tmp, "config.json"), RunDirError)
        else:
            base = base_named("softmax-regression")
            file = with_header_text(tmp, base, canonical_json(base.header)[:-1] + f',"x":{flood}}}')
            checked_call(lambda: load_model(file), file, ModelFileError)


def test_found_training_from_a_checkpoint_at_a_huge_step() -> None:
    base = base_named("mlp, momentum, cosine, mid-epoch")
    for step in (10**400, 2**64, 2**63):
        with tempfile.TemporaryDirectory() as tmp:
            file = edited_copy(tmp, base, ("position", "step"), step)
            ckpt = checked_call(lambda file=file: load_checkpoint(file), file, ModelFileError)
        if ckpt is not None:  # a step below 2**64 loads; training refuses it or goes on
            train_from(ckpt)


def test_found_a_long_value_quoted_in_an_error_message() -> None:
    """A message quoting a value of the file (a 600 kB string where layer sizes belong) was
    the whole value, made printable a character at a time: a dozen times the file's size in
    memory, for one line nobody reads to its end. Messages are cut at 2,000 characters."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "config.json")
        path.write_text(json.dumps({"hidden": "x" * 600_000}))
        size = path.stat().st_size
        tracemalloc.start()
        try:
            with pytest.raises(RunDirError) as refused:
                read_run_config(tmp)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert len(str(refused.value)) <= 2_004
    assert peak < 4 * size
