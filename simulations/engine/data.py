r"""A problem's own data: scikit-learn's shipped datasets, a user's file, a user's module.

Three ways to bring a dataset into a scenario (``[problem]``, see docs/own-problem.md):

* ``dataset = "breast_cancer" | "digits" | "diabetes" | "wine" | "iris"``: the arrays that
  scikit-learn ships with its code (``sklearn.datasets.load_<name>``; nothing is downloaded),
  for the built-in models (:data:`SKLEARN` says which task each dataset serves);
* ``data = "file.npz"`` (arrays ``X`` of shape (n, d) and ``y`` of shape (n,)) or
  ``data = "file.csv"`` (numbers separated by commas, one sample a row, the last column y, an
  optional header line), for the same models; the path is relative to the scenario file (to
  the working directory on the command line and in Python);
* ``module = "my_problem.py"``: a Python file defining the loss and the minibatch itself
  (:class:`simulations.engine.problems.UserModule`).

**Standardisation** (``standardize = true``, the default): each feature column is z-scored
over the dataset, x_ic ← (x_ic − m_c)/s_c with m_c = (1/n)Σ_i x_ic and
s_c = √((1/n)Σ_i (x_ic − m_c)²) (a constant column, s_c = 0, is only centred), and so is a
regression's target y; class labels are left alone. That is what a careful user does before
SGD on a linear or tanh model: the step sizes then mean the same on every feature, and
the regression's squared loss is of order one. ``standardize = false`` keeps the numbers as
they are.

A data file is named in a run by its absolute path and its contents' SHA-256
(:func:`file_digest`), so a changed file is a new run in the store.
"""

from __future__ import annotations

import hashlib
import importlib.util
import traceback
from pathlib import Path
from types import ModuleType

import numpy as np

from theory.errors import BadArgument

__all__ = ["SKLEARN", "TASKS", "failure", "file_digest", "load", "load_file", "resolve",
           "standardized", "targets"]

#: scikit-learn's shipped datasets and the task of their targets
SKLEARN = {"breast_cancer": "binary", "digits": "classes", "diabetes": "regression",
           "wine": "classes", "iris": "classes"}
#: what each task's targets are: binary labels 0/1, class labels 0..C−1, real numbers
TASKS = ("binary", "classes", "regression")


def resolve(path: str | Path, base: str | Path | None = None) -> str:
    """``path`` as an absolute path: relative to the folder of the file ``base`` when given,
    else to the working directory."""
    path = Path(path).expanduser()
    if not path.is_absolute() and base is not None:
        path = Path(base).parent / path
    return str(path.resolve())


def file_digest(path: str | Path, name: str = "data") -> str:
    """The first 16 hex digits of the SHA-256 of the file's bytes (:class:`BadArgument` naming
    ``name`` and the file where it cannot be read)."""
    if not Path(path).is_file():
        raise BadArgument(name, f"{path}: no such file")
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError as error:
        raise BadArgument(name, f"{path}: cannot read: {error.strerror or error}") from None


def load_file(path: Path, prefix: str) -> ModuleType:
    """The Python file ``path`` imported as a module named ``prefix``, its stem and a hash of
    its path (a user's claim or problem; exceptions are the caller's to report)."""
    tag = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    spec = importlib.util.spec_from_file_location(f"{prefix}_{path.stem}_{tag}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def failure(error: BaseException) -> str:
    """An exception raised by a user's file (a claim, a problem) as one line: its type, its
    message and the innermost place it came from (``file:line``; for a SyntaxError the line it
    points at)."""
    where = ""
    if isinstance(error, SyntaxError) and error.filename:
        where = f" ({Path(error.filename).name}:{error.lineno})"
        message = error.msg
    else:
        frames = traceback.extract_tb(error.__traceback__)
        if frames:
            where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})"
        message = str(error)
    return f"{type(error).__name__}: {' '.join(message.split())}{where}"


def standardized(x: np.ndarray) -> np.ndarray:
    r"""Columns z-scored: (x_ic − m_c)/s_c with the column's mean m_c and population standard
    deviation s_c = √((1/n)Σ_i (x_ic − m_c)²); a column with s_c = 0 is only centred."""
    x = np.asarray(x, dtype=np.float64)
    centred = x - x.mean(axis=0)
    scale = np.sqrt(np.mean(centred ** 2, axis=0))
    return centred / np.where(scale > 0, scale, 1.0)


def _sklearn(name: str) -> tuple[np.ndarray, np.ndarray]:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")()
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.float64)


def _read_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """X and y from an ``.npz`` (arrays X and y) or a ``.csv`` (last column y, optional header
    line), checked: X (n, d) and y (n,) of numbers, n ≥ 2, d ≥ 1, all finite;
    :class:`BadArgument` naming ``data`` and the file for anything else."""
    if not path.is_file():
        raise _bad(path, "no such file")
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".csv"):
        raise _bad(path, "expected a .npz file (arrays X and y) or a .csv file (last column y)")
    x, y = _read_npz(path) if suffix == ".npz" else _read_csv(path)
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or y.ndim not in (1, 2) or (y.ndim == 2 and y.shape[1] != 1) \
            or len(y) != len(x):
        raise _bad(path, f"expected X of shape (n, d) and y of shape (n,), got X {x.shape} and "
                         f"y {y.shape}")
    if len(x) < 2 or x.shape[1] < 1:
        raise _bad(path, f"expected at least 2 samples and 1 feature, got X {x.shape}")
    try:
        x, y = x.astype(np.float64), y.reshape(-1).astype(np.float64)
    except (TypeError, ValueError):
        raise _bad(path, "X and y must hold numbers") from None
    for name, arr in (("X", x), ("y", y)):
        bad_rows = np.flatnonzero(~np.isfinite(arr).reshape(len(arr), -1).all(axis=1))
        if len(bad_rows):
            raise _bad(path, f"{name} has NaN or infinite values (first in row {bad_rows[0]})")
    return x, y


def _bad(path: Path, message: str) -> BadArgument:
    return BadArgument("data", f"{path}: {message}")


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            missing = [k for k in ("X", "y") if k not in arrays.files]
            if missing:
                raise _bad(path, f"expected arrays X and y, found "
                                 f"{', '.join(arrays.files) or 'none'}")
            return arrays["X"], arrays["y"]
    except BadArgument:
        raise
    except (OSError, ValueError) as error:
        raise _bad(path, f"not a readable .npz file ({' '.join(str(error).split())})") from None


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise _bad(path, f"cannot read: {error}") from None
    rows = [line for line in lines if line.strip()]
    if rows and not _numeric(rows[0]):
        rows = rows[1:]  # a header line
    try:
        values = [[float(v) for v in row.split(",")] for row in rows]
    except ValueError as error:
        raise _bad(path, f"expected numbers separated by commas ({error})") from None
    widths = sorted({len(row) for row in values})
    if len(widths) != 1 or widths[0] < 2:
        raise _bad(path, f"expected rows of one length, at least one feature and y (the last "
                         f"column), got rows of {', '.join(map(str, widths)) or 'no'} numbers")
    table = np.array(values)
    return table[:, :-1], table[:, -1]


def _numeric(line: str) -> bool:
    try:
        [float(v) for v in line.split(",")]
    except ValueError:
        return False
    return True


def targets(y: np.ndarray, task: str, source: str, problem: str) -> np.ndarray:
    """``y`` checked for ``task`` (:data:`TASKS`): labels 0/1 (binary), integer labels ≥ 0
    (classes, as int64), any real numbers (regression); :class:`BadArgument` naming the
    source and the problem otherwise."""
    if task == "regression":
        return y
    labels = np.unique(y)
    if task == "binary" and not set(labels.tolist()) <= {0.0, 1.0}:
        raise BadArgument("data", f"{source}: the {problem} problem needs labels 0 and 1, got "
                                  f"{len(labels)} distinct values ({_few(labels)})")
    if task == "classes" and (np.any(labels < 0) or np.any(labels != np.round(labels))):
        raise BadArgument("data", f"{source}: the {problem} problem needs class labels "
                                  f"0, 1, ..., C−1, got {_few(labels)}")
    return y.astype(np.int64) if task == "classes" else y


def _few(values: np.ndarray) -> str:
    shown = ", ".join(f"{v:g}" for v in values[:5])
    return shown + (", ..." if len(values) > 5 else "")


def load(dataset: str | None, data: str | None, task: str, problem: str,
         standardize: bool = True) -> tuple[np.ndarray, np.ndarray, str]:
    """(X (n, d) float64, y (n,), source) of scikit-learn's ``dataset`` or the file ``data``,
    checked for ``task`` (:func:`targets`), X standardized (and y for a regression) when
    ``standardize`` (module docstring). ``source`` names where they came from."""
    if dataset is not None and data is not None:
        raise BadArgument("data", "give a dataset or a data file, not both")
    if dataset is not None:
        if dataset not in SKLEARN:
            raise BadArgument("dataset", f"unknown dataset {dataset!r}; scikit-learn's are "
                                         f"{', '.join(SKLEARN)}")
        if task != "regression" and SKLEARN[dataset] == "regression":
            raise BadArgument("dataset", f"{dataset} has real targets: the {problem} problem "
                                         "needs labels (a regression problem takes it)")
        if task == "regression" and SKLEARN[dataset] != "regression":
            raise BadArgument("dataset", f"{dataset} has class labels: use a classification "
                                         f"problem (logistic, mlp-classification)")
        x, y = _sklearn(dataset)
        source = f"sklearn {dataset}"
    elif data is not None:
        x, y = _read_file(Path(data))
        source = str(data)
    else:
        raise BadArgument("data", "no dataset or data file given")
    y = targets(y, task, source, problem)
    if standardize:
        x = standardized(x)
        if task == "regression":
            y = standardized(y[:, None])[:, 0]
    return x, y, source
