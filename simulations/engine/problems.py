r"""The catalog of problems: a loss ℓ(θ; ξ), a sampling law μ for ξ, a parameter layout and an
initial point.

A problem gives the engine four things, all batched over a leading path axis R:

* ``sample(w)``: a minibatch per path from random words ``w`` of shape (R, B·m) (see
  :mod:`simulations.engine.sampling`); B draws iid from μ, with replacement;
* ``grad(theta, batch)``: g = ∇_θ of the minibatch-mean loss (1/B) Σ_j ℓ(θ; ξ_j), shape (R, P),
  written out by hand (no autograd);
* ``loss(theta, batch)``: that minibatch-mean loss, shape (R,);
* ``initial(paths, ...)``: θ(0) per path, fixed (the same for every path) or random.

For the mean field H(θ) = E_μ[g/c] (see :mod:`simulations.engine.mean_field`) a problem whose μ is
finite (a dataset, or a discrete law) lists its atoms with ``atoms()``; the quadratic family has
closed forms for normal and Student-t laws.

Each problem declares its parameters (``PARAMS``, :class:`simulations.engine.params.Param`: type,
range, help) and the quadratic's laws theirs (:data:`LAWS`), both written in
:mod:`simulations.engine.catalog` (which the command line reads without importing torch);
:func:`make_problem` refuses a
parameter the problem (or the law) does not take, and the command line and
:class:`simulations.engine.spec.RunSpec` read the same declarations.

Problems with a finite dataset D draw ξ = (x_i, y_i) with i uniform on {0..n-1}. Their data are
generated once from a seed (``sklearn.datasets.make_regression``, ``make_blobs``, mnist1d's
``make_dataset``), so nothing is downloaded; the linear, logistic and MLP problems take instead
scikit-learn's shipped datasets (``dataset``) or a user's file (``data``), standardized unless
``standardize`` is false (:mod:`simulations.engine.data`), and :class:`UserModule` is a problem
written in a user's Python file. Every weight matrix and every bias vector is its own
layer (:mod:`simulations.engine.layout`); weight matrices are (out, in) as ``nn.Linear.weight``.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from simulations.engine import sampling
from simulations.engine.catalog import DF, LAWS, MEAN, NOISE, PROBLEM_PARAMS, SD
from simulations.engine.layout import Layout
from simulations.engine.params import Param, find, takers
from theory.errors import BadArgument, require_memory

__all__ = [
    "LAWS",
    "PROBLEMS",
    "Law",
    "LinearRegression",
    "Logistic",
    "MLPClassification",
    "MLPRegression",
    "Problem",
    "Quadratic",
    "RNNCliff",
    "UserModule",
    "make_problem",
    "problem_params",
]

# the parameters are declared in simulations.engine.catalog (read by the command line without torch)


def _checked(owner: Any, **values: Any) -> list[Any]:
    """``values`` coerced by the parameters ``owner`` declares (``owner.PARAMS``)."""
    out = []
    for key, value in values.items():
        param = find(owner.PARAMS, key)
        assert param is not None, f"{owner.__name__} declares no parameter {key!r}"
        out.append(param.coerce(value))
    return out


class Problem(ABC):
    """A loss, a sampling law μ, a layout and an initial point (see the module docstring)."""

    #: the catalog name
    name: str = ""
    #: random 32-bit words used per minibatch element
    words_per_sample: int = 1
    #: the parameters it takes (defaults: the constructor's)
    PARAMS: tuple[Param, ...] = ()

    def __init__(self, layout: Layout, theta0: ArrayLike | None, init_scale: float = 0.0):
        self.layout = layout
        self.theta0 = None if theta0 is None else np.asarray(theta0, dtype=np.float64)
        if self.theta0 is not None and self.theta0.shape != (layout.size,):
            raise BadArgument(
                "theta0", f"must have {layout.size} entries for {self.name}, "
                          f"got shape {self.theta0.shape}")
        self.init_scale = init_scale
        self._cache: dict[tuple, Any] = {}

    @property
    def n_params(self) -> int:
        """P, the length of θ."""
        return self.layout.size

    def settings(self) -> dict[str, Any]:
        """The problem's parameters as JSON-ready values (written into every result)."""
        return {"problem": self.name, **self.params}

    params: dict[str, Any] = {}

    # ---- initial point -------------------------------------------------------------------
    def initial(
        self, paths: torch.Tensor, seed: int, dtype: torch.dtype, device: torch.device | str
    ) -> torch.Tensor:
        """θ(0) for each path, (R, P).

        Fixed: ``theta0`` for every path. Random (``theta0=None``): θ(0)_p = init_scale·z_p with
        z standard normal, drawn from the stream ``STREAM_INIT`` as a function of (seed, path).
        """
        if self.theta0 is not None:
            fixed = torch.as_tensor(self.theta0, dtype=dtype, device=device)
            return fixed.expand(len(paths), -1).clone()
        w = sampling.words(seed, paths, range(1), 2 * self.n_params, stream=sampling.STREAM_INIT)
        return (self.init_scale * sampling.normals(w[0])).to(dtype)

    # ---- data on a device ------------------------------------------------------------------
    def data(self, dtype: torch.dtype, device: torch.device | str) -> dict[str, torch.Tensor]:
        """The problem's arrays as tensors of ``dtype`` on ``device`` (cached)."""
        key = (dtype, str(device))
        if key not in self._cache:
            self._cache[key] = {
                k: torch.as_tensor(v, device=device).to(
                    dtype if np.issubdtype(np.asarray(v).dtype, np.floating) else torch.int64
                )
                for k, v in self.arrays().items()
            }
        return self._cache[key]

    def arrays(self) -> dict[str, np.ndarray]:
        """The problem's numpy arrays (a dataset, a law's parameters)."""
        return {}

    # ---- the interface the engine uses ---------------------------------------------------
    @abstractmethod
    def sample(self, w: torch.Tensor, dtype: torch.dtype) -> Any:
        """A minibatch per path from words ``w`` of shape (R, B·words_per_sample)."""

    @abstractmethod
    def grad(self, theta: torch.Tensor, batch: Any) -> torch.Tensor:
        """∇_θ (1/B) Σ_j ℓ(θ; ξ_j) for each path: (R, P)."""

    @abstractmethod
    def loss(self, theta: torch.Tensor, batch: Any) -> torch.Tensor:
        """(1/B) Σ_j ℓ(θ; ξ_j) for each path: (R,)."""

    def atoms(self, dtype: torch.dtype, device: torch.device | str) -> tuple[Any, torch.Tensor]:
        """μ as a finite list of atoms: (a batch of S one-sample minibatches, weights (S,)).

        Raises ``NotImplementedError`` when μ is not finite.
        """
        raise NotImplementedError(f"{self.name}: the sampling law is not finite")

    def batch_of(self, batch: Any, rows: torch.Tensor) -> Any:
        """Rows ``rows`` of a batch (used to tile the atoms against many θ)."""
        return batch[rows]


# ==============================================================================================
# Finite datasets
# ==============================================================================================


class FiniteData(Problem):
    """A problem whose μ is uniform on a finite dataset: ξ = sample i, i uniform on {0..n-1}.

    A minibatch is the index tensor (R, B); one word per sample gives i = floor(u32·n/2^32).
    The data-based problems take ``dataset``, ``data`` and ``standardize`` in place of their
    generated data (:meth:`_own_data`); n and dim are then the data's.
    """

    n: int
    x: np.ndarray
    y: np.ndarray

    def sample(self, w: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return sampling.uniform_indices(w, self.n)

    def arrays(self):
        return {"x": self.x, "y": self.y}

    def atoms(self, dtype, device):
        index = torch.arange(self.n, device=device)[:, None]
        return index, torch.full((self.n,), 1.0 / self.n, dtype=dtype, device=device)

    def _own_data(self, task: str, dataset: str | None = None, data: str | None = None,
                  standardize: bool | None = None) -> dict[str, Any] | None:
        """Load scikit-learn's ``dataset`` or the file ``data`` into ``x``, ``y`` and ``n``
        (:func:`simulations.engine.data.load`, ``task`` its targets; ``standardize`` None means
        true) and return the parameters that describe them; None (and nothing loaded) when neither
        is given."""
        if dataset is None and data is None:
            if standardize is not None:
                raise BadArgument("standardize", "applies to a dataset or a data file only")
            return None
        from simulations.engine import data as own

        standardize = True if standardize is None else standardize
        self.x, self.y, _ = own.load(dataset, data, task, self.name, standardize)
        self.n = len(self.x)
        where = {"dataset": dataset} if dataset is not None else {"data": data}
        return {**where, "standardize": standardize, "n": self.n, "dim": self.x.shape[1]}


def _take(rows: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``rows[idx]`` (shape idx.shape + rows.shape[1:]) by ``index_select``, a few times faster
    than advanced indexing for the (N·S, 1) indices of the mean field's atoms."""
    return rows.index_select(0, idx.reshape(-1)).view(*idx.shape, *rows.shape[1:])


def _regression_data(n: int, dim: int, data_noise: float, data_seed: int):
    from sklearn.datasets import make_regression

    x, y = make_regression(n_samples=n, n_features=dim, noise=data_noise,
                           random_state=data_seed)
    return x.astype(np.float64), y.astype(np.float64)


class _LinearModel(FiniteData):
    """f(x) = w·x + b with θ = [w (a (1, dim) weight layer), b (1)], θ(0) = 0 unless given."""

    def _init_layout(self, dim, theta0):
        layout = Layout.of(("weight", (1, dim)), ("bias", (1,)))
        super().__init__(layout, np.zeros(dim + 1) if theta0 is None else theta0)

    def _forward(self, theta, idx):
        """x (R, B, dim), f (R, B) and y (R, B) of the minibatch ``idx``."""
        d = self.data(theta.dtype, theta.device)
        x = _take(d["x"], idx)
        return x, torch.einsum("rbd,rd->rb", x, theta[:, :-1]) + theta[:, -1:], _take(d["y"], idx)

    @staticmethod
    def _gradient(e, x):
        """Σ_j e_j [x_j, 1] for e = ∂L/∂f_j (R, B)."""
        return torch.cat([torch.einsum("rb,rbd->rd", e, x), e.sum(1, keepdim=True)], dim=1)


class LinearRegression(_LinearModel):
    r"""Linear regression with the paper's squared loss (4).

    Data: ``sklearn.datasets.make_regression(n, dim, noise=data_noise,
    random_state=data_seed)``, targets unscaled; μ uniform on the n samples. Defaults n = 1000,
    dim = 20, data_noise = 0.1, data_seed = 0.
    Model f(x) = w·x + b; θ = [w (as a (1, dim) weight layer), b (1)], P = dim + 1.
    Loss ℓ = (f(x) − y)²; minibatch gradient g = (2/B) Σ_j r_j [x_j, 1], r_j = f(x_j) − y_j.
    θ(0) = 0 unless given.
    """

    name = "linear-regression"
    PARAMS = PROBLEM_PARAMS["linear-regression"]

    def __init__(self, n=1000, dim=20, data_noise=0.1, data_seed=0, theta0=None, **own_data):
        self.n, dim, data_noise, data_seed = _checked(self, n=n, dim=dim, data_noise=data_noise,
                                                      data_seed=data_seed)
        own = self._own_data("regression", **own_data)
        if own is None:
            self.x, self.y = _regression_data(self.n, dim, data_noise, data_seed)
            own = {"n": self.n, "dim": dim, "data_noise": data_noise, "data_seed": data_seed}
        self.params = own
        self._init_layout(self.x.shape[1], theta0)

    def grad(self, theta, idx):
        x, f, y = self._forward(theta, idx)
        return self._gradient((f - y) * (2.0 / idx.shape[1]), x)

    def loss(self, theta, idx):
        _, f, y = self._forward(theta, idx)
        return (f - y).square().mean(1)


class Logistic(_LinearModel):
    r"""Logistic regression with binary cross-entropy.

    Data: x_i ~ N(0, I_dim) for i < n (numpy ``default_rng(data_seed)``), labels
    y_i = 1[x_i·w* > 0] with w* = (1, …, 1)/√dim, which is linearly separable; with
    ``separable=False`` a fraction ``flip`` (default 0.1) of the labels is flipped. Defaults
    n = 200, dim = 2, separable = True, data_seed = 0.
    Model f(x) = w·x + b; θ = [w ((1, dim)), b (1)]; ℓ = log(1 + e^f) − y·f;
    g = (1/B) Σ_j (σ(f_j) − y_j)[x_j, 1]. On separable data H has no zero and ‖θ‖ → ∞.
    θ(0) = 0 unless given.
    """

    name = "logistic"
    PARAMS = PROBLEM_PARAMS["logistic"]

    def __init__(self, n=200, dim=2, separable=True, flip=0.1, data_seed=0, theta0=None,
                 **own_data):
        self.n, dim, separable, flip, data_seed = _checked(
            self, n=n, dim=dim, separable=separable, flip=flip, data_seed=data_seed)
        own = self._own_data("binary", **own_data)
        if own is not None:
            self.params = own
            self._init_layout(self.x.shape[1], theta0)
            return
        rng = np.random.default_rng(data_seed)
        self.x = rng.standard_normal((self.n, dim))
        self.y = (self.x @ (np.ones(dim) / math.sqrt(dim)) > 0).astype(np.float64)
        if not separable:
            flipped = rng.random(self.n) < flip
            self.y[flipped] = 1.0 - self.y[flipped]
        self.params = {"n": self.n, "dim": dim, "separable": separable, "flip": flip,
                       "data_seed": data_seed}
        self._init_layout(dim, theta0)

    def grad(self, theta, idx):
        x, f, y = self._forward(theta, idx)
        return self._gradient((torch.sigmoid(f) - y) / idx.shape[1], x)

    def loss(self, theta, idx):
        _, f, y = self._forward(theta, idx)
        return (torch.nn.functional.softplus(f) - y * f).mean(1)


def _linear_init(rng: np.random.Generator, fan_out: int, fan_in: int) -> list[np.ndarray]:
    """nn.Linear's default: weight and bias uniform on ±1/√fan_in."""
    bound = 1.0 / math.sqrt(fan_in)
    return [rng.uniform(-bound, bound, (fan_out, fan_in)).ravel(),
            rng.uniform(-bound, bound, fan_out)]


class _TanhMLP(FiniteData):
    """Shared forward and backward pass of a one-hidden-layer tanh MLP d–h–k.

    f(x) = W2 tanh(W1 x + b1) + b2, θ = [W1 (h, d), b1 (h), W2 (k, h), b2 (k)].
    """

    def _init_layout(self, dim, hidden, out, theta0, init_seed):
        layout = Layout.of(("W1", (hidden, dim)), ("b1", (hidden,)), ("W2", (out, hidden)),
                           ("b2", (out,)))
        if theta0 is None:
            rng = np.random.default_rng(int(init_seed))
            theta0 = np.concatenate(_linear_init(rng, hidden, dim) + _linear_init(rng, out, hidden))
        super().__init__(layout, theta0)

    def _forward(self, theta, x):
        lay = self.layout
        w1, b1, w2, b2 = (lay[n].view(theta) for n in ("W1", "b1", "W2", "b2"))
        a = torch.tanh(torch.baddbmm(b1[:, None, :], x, w1.transpose(1, 2)))  # (R, B, h)
        return a, torch.baddbmm(b2[:, None, :], a, w2.transpose(1, 2))  # (R, B, k)

    def _backward(self, theta, x, a, e):
        """Gradient from e = ∂L/∂f (R, B, k): the four layers flattened and concatenated."""
        w2 = self.layout["W2"].view(theta)
        dz = torch.bmm(e, w2) * (1.0 - a.square())  # (R, B, h)
        return torch.cat(
            [torch.bmm(dz.transpose(1, 2), x).flatten(1), dz.sum(1),
             torch.bmm(e.transpose(1, 2), a).flatten(1), e.sum(1)],
            dim=1,
        )


class MLPRegression(_TanhMLP):
    r"""A tanh MLP d–h–1 with the paper's squared loss (4) on ``make_regression`` data.

    Data as :class:`LinearRegression` (defaults n = 1000, dim = 20, data_noise = 0.1, data_seed = 0,
    targets unscaled); hidden = 25, so the default network is 20–25–1 with P = 551.
    f(x) = W2 tanh(W1 x + b1) + b2; ℓ = (f(x) − y)²; tanh satisfies (A1).
    θ(0): nn.Linear's default initialisation (uniform ±1/√fan_in, weights then bias, layer by
    layer) from ``numpy.random.default_rng(init_seed)``, init_seed = 0, the same for every path.
    """

    name = "mlp-regression"
    PARAMS = PROBLEM_PARAMS["mlp-regression"]

    def __init__(self, n=1000, dim=20, hidden=25, data_noise=0.1, data_seed=0, init_seed=0,
                 theta0=None, **own_data):
        self.n, dim, hidden, data_noise, data_seed, init_seed = _checked(
            self, n=n, dim=dim, hidden=hidden, data_noise=data_noise, data_seed=data_seed,
            init_seed=init_seed)
        own = self._own_data("regression", **own_data)
        if own is None:
            self.x, self.y = _regression_data(self.n, dim, data_noise, data_seed)
            own = {"n": self.n, "dim": dim, "data_noise": data_noise, "data_seed": data_seed}
        self.params = {**own, "hidden": hidden, "init_seed": init_seed}
        self._init_layout(self.x.shape[1], hidden, 1, theta0, init_seed)

    def _residual(self, theta, idx):
        d = self.data(theta.dtype, theta.device)
        x = _take(d["x"], idx)
        a, f = self._forward(theta, x)
        return x, a, f - _take(d["y"], idx)[..., None]

    def grad(self, theta, idx):
        x, a, r = self._residual(theta, idx)
        return self._backward(theta, x, a, r * (2.0 / idx.shape[1]))

    def loss(self, theta, idx):
        return self._residual(theta, idx)[2].square().mean((1, 2))


class MLPClassification(_TanhMLP):
    r"""A softmax MLP d–h–C with cross-entropy ((5)–(6)) on a finite dataset.

    Data: ``dataset="blobs"`` (default): ``sklearn.datasets.make_blobs(n, dim, centers=classes,
    cluster_std=2.0, random_state=data_seed)`` with n = 600, dim = 10, classes = 3;
    ``dataset="mnist1d"``: the training split of ``mnist1d.data.make_dataset`` with its default
    arguments (4000 samples of length 40, 10 classes; generated offline, needs the
    ``experiments`` extra). hidden = 32. ℓ = −log softmax(f(x))_y; g from ∂ℓ/∂f = softmax − e_y.
    θ(0): nn.Linear's default initialisation from ``default_rng(init_seed)``, init_seed = 0.
    """

    name = "mlp-classification"
    PARAMS = PROBLEM_PARAMS["mlp-classification"]

    def __init__(self, n=600, dim=10, classes=3, hidden=32, data_seed=0, init_seed=0,
                 theta0=None, **own_data):
        dataset = own_data.pop("dataset", "blobs")  # "blobs", "mnist1d" or a shipped dataset
        n, dim, classes, hidden, data_seed, init_seed = _checked(
            self, n=n, dim=dim, classes=classes, hidden=hidden,
            data_seed=data_seed, init_seed=init_seed)
        dataset = None if dataset is None else _checked(self, dataset=dataset)[0]
        generated = own_data.get("data") is not None or dataset in ("blobs", "mnist1d")
        own = self._own_data("classes", **own_data, dataset=None if generated else dataset)
        if own is not None:
            self.classes = int(self.y.max()) + 1
            self.params = {**own, "classes": self.classes, "hidden": hidden,
                           "init_seed": init_seed}
            self._init_layout(self.x.shape[1], hidden, self.classes, theta0, init_seed)
            return
        if dataset == "blobs":
            from sklearn.datasets import make_blobs

            x, y = make_blobs(n_samples=n, n_features=dim, centers=classes, cluster_std=2.0,
                              random_state=data_seed)
        elif dataset == "mnist1d":
            try:
                from mnist1d.data import get_dataset_args, make_dataset
            except ImportError as err:
                raise ValueError("dataset 'mnist1d' needs the mnist1d package "
                                 "(pip install -e '.[experiments]')") from err
            args = get_dataset_args()
            args.seed = data_seed
            data = make_dataset(args)
            x, y = np.asarray(data["x"], dtype=np.float64), np.asarray(data["y"])
            n, dim, classes = x.shape[0], x.shape[1], int(y.max()) + 1
        self.n, self.classes = n, classes
        self.x, self.y = x.astype(np.float64), y.astype(np.int64)
        self.params = {"dataset": dataset, "n": n, "dim": dim, "classes": classes,
                       "hidden": hidden, "data_seed": data_seed, "init_seed": init_seed}
        self._init_layout(dim, hidden, classes, theta0, init_seed)

    def _logits(self, theta, idx):
        d = self.data(theta.dtype, theta.device)
        x = _take(d["x"], idx)
        a, f = self._forward(theta, x)
        return x, a, f, _take(d["y"], idx)

    def grad(self, theta, idx):
        x, a, f, y = self._logits(theta, idx)
        e = torch.softmax(f, dim=-1)
        e = e - torch.nn.functional.one_hot(y, self.classes).to(e.dtype)
        return self._backward(theta, x, a, e / idx.shape[1])

    def loss(self, theta, idx):
        _, _, f, y = self._logits(theta, idx)
        return -torch.log_softmax(f, -1).gather(-1, y[..., None])[..., 0].mean(1)


class RNNCliff(FiniteData):
    r"""The single-unit recurrence of Pascanu, Mikolov & Bengio (2013, §3), whose loss has a cliff.

    x_k = w·tanh(x_{k−1}) + b for k = 1..length (default 50), loss ℓ = (x_length − target)² with
    target = 0.7; θ = (w (1, 1), b (1)). μ: x_0 uniform on n = 32 points drawn once from
    uniform(−1, 1) (``default_rng(data_seed)``, data_seed = 0). θ(0) = (w, b) = (1.5, −0.1) by
    default. For w > 1 the map has two attracting fixed points and x_length jumps between them as
    b crosses a threshold that depends on x_0, so ∂ℓ/∂b is huge near it: unclipped gradients
    explode. The gradient is back-propagated through time by hand:
    δ_length = 2(x_length − target)/B, ∂/∂w += δ_k tanh(x_{k−1}), ∂/∂b += δ_k,
    δ_{k−1} = δ_k w (1 − tanh²(x_{k−1})).
    """

    name = "rnn-cliff"
    PARAMS = PROBLEM_PARAMS["rnn-cliff"]

    def __init__(self, n=32, length=50, target=0.7, data_seed=0, theta0=None):
        self.n, self.length, self.target, data_seed = _checked(
            self, n=n, length=length, target=target, data_seed=data_seed)
        self.x0 = np.random.default_rng(data_seed).uniform(-1.0, 1.0, self.n)
        self.params = {"n": self.n, "length": self.length, "target": self.target,
                       "data_seed": data_seed}
        super().__init__(Layout.of(("w", (1, 1)), ("b", (1,))),
                         (1.5, -0.1) if theta0 is None else theta0)

    def arrays(self):
        return {"x0": self.x0}

    def _run(self, theta, idx):
        x = _take(self.data(theta.dtype, theta.device)["x0"], idx)  # (R, B)
        w, b = theta[:, :1], theta[:, 1:]
        hidden = []
        for _ in range(self.length):
            h = torch.tanh(x)
            hidden.append(h)
            x = w * h + b
        return x, hidden

    def grad(self, theta, idx):
        x, hidden = self._run(theta, idx)
        w = theta[:, :1]
        delta = (x - self.target) * (2.0 / idx.shape[1])
        dw = torch.zeros_like(delta)
        db = torch.zeros_like(delta)
        for h in reversed(hidden):
            dw = dw + delta * h
            db = db + delta
            delta = delta * w * (1.0 - h.square())
        return torch.stack([dw.sum(1), db.sum(1)], dim=1)

    def loss(self, theta, idx):
        return (self._run(theta, idx)[0] - self.target).square().mean(1)


# ==============================================================================================
# A user's module
# ==============================================================================================


class UserModule(FiniteData):
    r"""A problem written by the user in a Python file (``[problem] module = "my_problem.py"``),
    run on the torch step with gradients by autograd. The file defines:

    * ``n``: the dataset size; the toolkit draws the minibatch's sample indices i uniform on
      {0..n−1}, with replacement, from its own counter-based streams (so runs are reproducible,
      the splitting can replay them and H is the exact finite sum over the n samples);
    * ``theta0``: θ(0), P numbers, the same on every path;
    * ``loss(theta, batch)``: θ (R, P) (the run's dtype and device) → (R,), each row's
      minibatch-mean loss (1/B)Σ_j ℓ(θ_r; ξ_j), differentiable by torch, each row depending
      on its own θ_r only;
    * optionally ``minibatch(index)``: the (R, B) int64 tensor of sample indices → the batch
      handed to ``loss`` (default: the indices themselves);
    * optionally ``layers``: (name, shape) pairs splitting θ into layers for the layer-wise and
      unit-wise rules (default: one layer ``theta`` of shape (P,)).

    g = ∇_θ Σ_r loss(θ, batch)_r by ``torch.autograd.grad``, row r being ∇_{θ_r} of its own
    loss. The file is checked when it is loaded (one line naming it for each failure): the
    names exist, ``loss`` returns R finite numbers at θ(0) and its gradient does not mix rows.
    """

    name = "module"
    PARAMS = PROBLEM_PARAMS["module"]

    def __init__(self, module: str | None = None):
        from simulations.engine.data import failure, load_file

        if not isinstance(module, str) or not module:
            raise BadArgument("module", "required: the path of a Python file (the protocol: n, "
                                        "theta0, loss(theta, batch))")
        path = Path(module).resolve()
        self.source = str(module)

        def bad(message: str) -> BadArgument:
            return BadArgument("module", f"{module}: {message}")

        if path.suffix != ".py" or not path.is_file():
            raise bad("no such Python file" if not path.exists() else "expected a .py file")
        try:
            mod = load_file(path, "clipverify_problem")
        except Exception as error:  # a user's file: say what it raised, in one line
            raise bad(failure(error)) from None
        missing = [k for k in ("n", "theta0", "loss") if not hasattr(mod, k)]
        if missing:
            raise bad(f"defines no {', '.join(missing)} (the protocol: n, theta0, "
                      f"loss(theta, batch); optional minibatch(index), layers)")
        n = mod.n
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise bad(f"n must be a positive integer (the dataset size), got {n!r}")
        if not callable(mod.loss):
            raise bad("loss must be a function loss(theta, batch)")
        self._loss = mod.loss
        self._minibatch = getattr(mod, "minibatch", lambda index: index)
        if not callable(self._minibatch):
            raise bad("minibatch must be a function minibatch(index)")
        try:
            theta0 = np.asarray(torch.as_tensor(mod.theta0).detach().cpu(), dtype=np.float64)
        except (TypeError, ValueError, RuntimeError):
            raise bad(f"theta0 must be P numbers, got {mod.theta0!r:.60}") from None
        if theta0.ndim != 1 or not len(theta0) or not np.isfinite(theta0).all():
            raise bad(f"theta0 must be P finite numbers in a flat list, got shape "
                      f"{theta0.shape}")
        try:
            layout = (Layout.of(*((str(k), tuple(v)) for k, v in mod.layers))
                      if hasattr(mod, "layers") else Layout.of(("theta", theta0.shape)))
        except (TypeError, ValueError):
            raise bad("layers must be (name, shape) pairs") from None
        if layout.size != len(theta0):
            raise bad(f"layers hold {layout.size} numbers, theta0 {len(theta0)}")
        self.n = int(n)
        self.params = {"module": str(module)}
        super().__init__(layout, theta0)
        self._check(bad, failure)

    def arrays(self):
        return {}

    def _check(self, bad, failure) -> None:
        """One evaluation at θ(0): the loss is R finite numbers, its gradient (P,) per row and
        the same for one row and for two equal rows (rows do not mix)."""
        theta = torch.as_tensor(self.theta0)[None]
        try:
            one, two = (self.grad(theta.expand(r, -1).clone(),
                                  torch.zeros(r, 1, dtype=torch.int64)) for r in (1, 2))
            value = self.loss(theta.expand(2, -1), torch.zeros(2, 1, dtype=torch.int64))
        except BadArgument:
            raise
        except Exception as error:  # a user's file: say what it raised, in one line
            raise bad(f"loss at theta0 raised {failure(error)}") from None
        if not torch.isfinite(value).all() or not torch.isfinite(one).all():
            raise bad("loss or its gradient is not finite at theta0")
        if not torch.allclose(two, one.expand(2, -1), rtol=1e-6, atol=1e-12):
            raise bad("loss mixes the rows of theta: the gradient of one row differs from "
                      "that of two equal rows (each row must depend on its own θ only)")

    def grad(self, theta, batch):
        with torch.enable_grad():
            leaf = theta.detach().requires_grad_(True)
            out = self._loss(leaf, self._minibatch(batch))
            if not isinstance(out, torch.Tensor) or out.shape != leaf.shape[:1]:
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise BadArgument("module", f"{self.source}: loss must return one number per "
                                            f"row of theta, shape (R,) = ({len(leaf)},), got "
                                            f"{got}")
            (g,) = torch.autograd.grad(out.sum(), leaf, allow_unused=True)
        return torch.zeros_like(theta) if g is None else g.to(theta.dtype)

    def loss(self, theta, batch):
        with torch.no_grad():
            return self._loss(theta, self._minibatch(batch))


# ==============================================================================================
# The quadratic family
# ==============================================================================================


@dataclass(frozen=True)
class Law:
    r"""A law for the target y of the quadratic family, in d dimensions.

    * ``normal``: y = mean + sd·z, z ~ N(0, I_d) (two words per coordinate);
    * ``student-t``: y = mean + sd·t, the coordinates iid Student-t with ``df`` = ν > 0 degrees
      of freedom (any real ν; kept as an int when integral): for an integer ν,
      t = z_0/√(Σ_{k=1}^{ν} z_k²/ν) (2(ν+1) words per coordinate); otherwise
      :func:`simulations.engine.sampling.student_t`, z_0/√(V/ν) with V = Σ_{k≤n} z_k² + 2·Gamma(a)
      drawn by inverting the incomplete gamma function (n = ⌊ν⌋ − 1, a = (ν − n)/2; ν < 1:
      n = 0, a = ν/2; 2(n+2) words per coordinate). E|y| is infinite for ν ≤ 1 and E[y²]
      for ν ≤ 2; runs accept them (only H without clipping needs ν > 1);
    * ``discrete``: y = v_k·(1, …, 1) with probability p_k (one word; the atoms lie on the
      diagonal, so H is an exact finite sum in any dimension);
    * ``point``: y = mean, no noise.

    The parameters each law takes are declared in :data:`LAWS` (the others keep their
    defaults).
    """

    kind: str = "normal"
    mean: float = MEAN.default
    sd: float = SD.default
    df: float = DF.default
    values: tuple[float, ...] = ()
    probs: tuple[float, ...] = ()
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "kind", NOISE.coerce(self.kind))
        for param in LAWS[self.kind]:
            value = param.coerce(getattr(self, param.name))
            object.__setattr__(self, param.name, (value,) if param.many and not isinstance(
                value, tuple) else value)
        if self.kind == "discrete":
            if len(self.values) < 1 or len(self.values) != len(self.probs):
                raise BadArgument("probs", "a discrete law needs as many values as probs (at "
                                           f"least one), got {len(self.values)} values and "
                                           f"{len(self.probs)} probs")
            if abs(math.fsum(self.probs) - 1.0) > 1e-9:
                raise BadArgument("probs", f"must be non-negative and sum to 1, got {self.probs}")

    def words(self) -> int:
        """Random words per coordinate (discrete: per sample)."""
        if self.kind == "student-t" and not self.integer_df:
            return sampling.student_t_words(self.df)
        return {"normal": 2, "student-t": 2 * (int(self.df) + 1), "discrete": 1,
                "point": 0}[self.kind]

    @property
    def integer_df(self) -> bool:
        """Whether ``df`` is an integer (the series for F_ν, the sum of ν squared normals)."""
        return float(self.df).is_integer()

    def mean_value(self) -> float:
        r"""E[y] per coordinate: Σ_k p_k·v_k for the discrete law, ``mean`` for the others (for
        the student-t law the mean exists only when df > 1; ``mean`` is its centre)."""
        if self.kind == "discrete":
            return float(np.dot(self.values, self.probs))
        return self.mean

    def moment_finite(self, order: int) -> bool:
        r"""Whether E|y_k|^order < ∞: always for the normal, discrete and point laws; for the
        Student-t law with ν = ``df`` degrees of freedom iff order < ν (its density decays like
        |t|^{−(ν+1)}, so ∫|t|^order·|t|^{−(ν+1)} dt converges at ∞ iff order − ν − 1 < −1)."""
        if self.kind == "student-t":
            return order < self.df
        return True

    def describe(self) -> str:
        """One line, e.g. "y ~ N(100, 1)"."""
        if self.kind == "discrete":
            atoms = ", ".join(f"{v:g} w.p. {p:g}" for v, p in zip(self.values, self.probs,
                                                                  strict=True))
            return f"y = v·(1, …, 1), v = {atoms}"
        if self.kind == "point":
            return f"y = {self.mean:g}"
        if self.kind == "student-t":
            return f"y ~ {self.mean:g} + {self.sd:g}·t_{self.df:g}"
        return f"y ~ N({self.mean:g}, {self.sd:g}²)"

    def to_dict(self) -> dict[str, Any]:
        """The law as JSON-ready values (its kind as ``noise`` and its parameters)."""
        return {"noise": self.kind, **{p.name: list(v) if isinstance(v := getattr(self, p.name),
                                                                     tuple) else v
                                       for p in LAWS[self.kind]}}


class Quadratic(Problem):
    r"""ℓ(θ; y) = (L/2)‖θ − y‖² in d dimensions, y ~ μ (a :class:`Law`).

    g = L(θ − ȳ) with ȳ the minibatch mean of y. L = 1 is the quadratic of the paper's far-away
    minimiser example; L < 0 makes it concave. One layer "theta" of shape (d,). θ(0) = theta0
    (default 0) for every path. Defaults: d = 1, μ = normal(0, 1), L = 1.

    H(θ) = E[g/c] for B = 1 is exact for a discrete or point law in any dimension (a finite sum),
    and in closed form for normal and Student-t laws in 1-D (any rule) or under value clipping.
    """

    name = "quadratic"
    PARAMS = PROBLEM_PARAMS["quadratic"]

    def __init__(self, law: Law | None = None, dim=1, curvature=1.0, theta0=None):
        self.law = Law() if law is None else law
        self.dim, self.curvature = _checked(self, dim=dim, curvature=curvature)
        if self.curvature == 0:
            raise BadArgument("curvature", "must be non-zero")
        self.words_per_sample = max(1, self.law.words() * (1 if self.law.kind == "discrete"
                                                           else self.dim))
        self.params = {**self.law.to_dict(), "dim": self.dim, "curvature": self.curvature}
        theta0 = np.zeros(self.dim) if theta0 is None else np.broadcast_to(
            np.asarray(theta0, dtype=np.float64), (self.dim,)).copy()
        super().__init__(Layout.of(("theta", (self.dim,))), theta0)

    def arrays(self):
        if self.law.kind == "discrete":
            return {"values": np.asarray(self.law.values, dtype=np.float64),
                    "cumprobs": np.cumsum(self.law.probs)[:-1]}
        return {}

    def sample(self, w: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """y, shape (R, B, d), from words (R, B·words_per_sample)."""
        law, d = self.law, self.dim
        rows = w.shape[0]
        w = w.view(rows, -1, self.words_per_sample)
        if law.kind == "point":
            return torch.full((rows, w.shape[1], d), law.mean, dtype=dtype, device=w.device)
        if law.kind == "discrete":
            arr = self.data(torch.float64, w.device)
            u = sampling.uniform32(w[..., 0])
            cum = arr["cumprobs"]
            # k = #{j : cum_j ≤ u}, as searchsorted(right=True); a comparison is 40× faster on
            # the CPU for the few atoms a law usually has
            k = ((u[..., None] >= cum).sum(-1) if len(cum) <= 64
                 else torch.searchsorted(cum, u.contiguous(), right=True))
            return arr["values"][k][..., None].expand(-1, -1, d).to(dtype)
        if law.kind == "student-t" and not law.integer_df:
            noise = sampling.student_t(w.reshape(rows, w.shape[1], -1), law.df)  # (R, B, d)
            return (law.mean + law.sd * noise).to(dtype)
        z = sampling.normals(w.view(rows, w.shape[1], d, -1))  # (R, B, d, words/2)
        if law.kind == "normal":
            noise = z[..., 0]
        else:
            noise = z[..., 0] / torch.sqrt(z[..., 1:].square().mean(-1))
        return (law.mean + law.sd * noise).to(dtype)

    def grad(self, theta, y):
        return self.curvature * (theta - y.mean(1))

    def loss(self, theta, y):
        return 0.5 * self.curvature * (theta[:, None, :] - y).square().sum(-1).mean(1)

    def atoms(self, dtype, device):
        law = self.law
        if law.kind == "point":
            return torch.full((1, 1, self.dim), law.mean, dtype=dtype, device=device), \
                torch.ones(1, dtype=dtype, device=device)
        if law.kind != "discrete":
            raise NotImplementedError(f"quadratic: the {law.kind} law is not finite")
        values = torch.as_tensor(law.values, dtype=dtype, device=device)
        return values[:, None, None].expand(-1, 1, self.dim).contiguous(), \
            torch.as_tensor(law.probs, dtype=dtype, device=device)


def _stiff(kind="stiff", dim=1, curvature=None, target=None, theta0=None):
    r"""Losses on which adaptive clipping leaves any practical radius (no noise, μ a point mass):

    * ``stiff``: ℓ = (L/2)‖θ‖², L = 100, θ(0) = 1: with λ·L > 1 the adaptive update
      θ ← θ − a·L·θ·min(1, λ/L) overshoots when a(t)·λ > 2 and grows geometrically before the
      steps become small;
    * ``far``: ℓ = ½‖θ − y‖² with y = 10^8, θ(0) = 1: while θ is far from y the adaptive step is
      a(t)·λ‖θ‖, so ‖θ‖ grows like Π(1 + λ a(t));
    * ``concave``: ℓ = −½‖θ‖², θ(0) = 1: g = −θ, so ‖θ(t+1)‖ = ‖θ(t)‖(1 + a(t)·min(1, λ)).

    Classic clipping moves each step by at most a(t)λ, so it stays within λΣa on all three.
    """
    presets = {"stiff": (100.0, 0.0), "far": (1.0, 1e8), "concave": (-1.0, 0.0)}
    kind = _checked(_stiff, kind=kind)[0]
    default_curv, default_target = presets[kind]
    curv = default_curv if curvature is None else curvature
    target = default_target if target is None else target
    problem = Quadratic(Law("point", mean=target), dim=dim, curvature=curv,
                        theta0=1.0 if theta0 is None else theta0)
    problem.name = "stiff"
    problem.params = {"kind": kind, **problem.params}
    return problem


_stiff.PARAMS = PROBLEM_PARAMS["stiff"]  # type: ignore[attr-defined]

PROBLEMS: dict[str, Any] = {
    "quadratic": Quadratic,
    "linear-regression": LinearRegression,
    "logistic": Logistic,
    "mlp-regression": MLPRegression,
    "mlp-classification": MLPClassification,
    "rnn-cliff": RNNCliff,
    "stiff": _stiff,
    "module": UserModule,
}


def problem_params(name: str) -> tuple[Param, ...]:
    """The parameters problem ``name`` declares, each with its default (the constructor's;
    None where the problem chooses)."""
    factory = PROBLEMS[name]
    signature = inspect.signature(factory).parameters
    return tuple(replace(p, default=signature[p.name].default)
                 if p.name in signature and signature[p.name].default is not None else p
                 for p in factory.PARAMS)


def check_params(name: str, params: dict[str, Any]) -> None:
    """Refuse a parameter problem ``name`` does not take, or (quadratic) its law does not take:
    :class:`~theory.errors.BadArgument` naming it."""
    declared = PROBLEMS[name].PARAMS
    for key in params:
        if find(declared, key) is None:
            hint = ("; the noise of make_regression is data_noise"
                    if key == "noise" and find(declared, "data_noise") else "")
            raise BadArgument(key, f"the {name} problem does not take it (it takes "
                                   f"{', '.join(p.name for p in declared)}){hint}")
    if name == "quadratic":
        law = params.get("noise", NOISE.default)
        for key in params:
            laws = takers(LAWS, key)
            if laws and law not in laws:
                raise BadArgument(key, f"the {law} law does not take it (only "
                                       f"{', '.join(laws)})")


def check_size(name: str, params: dict[str, Any], available: int | None = None) -> None:
    """Refuse up front (:class:`~theory.errors.BadArgument` naming ``n`` or ``dim``) a problem
    whose dataset and parameters would not fit in ``available`` bytes (default: this machine's
    memory): n·(dim + 2) numbers of data and the network's weights, counted four times (as
    generated, as float64, on the device, and a margin). Values that are not integers are left
    to the problem's own checks."""
    values = {p.name: p.default for p in problem_params(name)} | params

    def size(key: str) -> int:
        value = values.get(key)
        if isinstance(value, int | np.integer) and not isinstance(value, bool) and value > 0:
            return int(value)
        return 1

    n, dim = (size("n") if "n" in values else 0), size("dim")
    numbers = n * (dim + 2) + size("hidden") * (dim + size("classes") + 2) + dim
    largest = "n" if n > dim else "dim"
    require_memory(largest, 8 * 4 * numbers,
                   f"the {name} problem's data and parameters (n = {n}, dim = {dim})"
                   if n else f"the {name} problem's parameters (dim = {dim})", available)


def make_problem(name: str, **params: Any) -> Problem:
    """A problem of the catalog by name, with its parameters (see each class's docstring and
    ``PARAMS``; :func:`check_params` refuses the others).

    For ``quadratic`` the law is given by ``noise`` (normal, student-t, discrete, point) and its
    parameters ``mean``, ``sd``, ``df``, ``values``, ``probs`` (:data:`LAWS`).
    """
    if name not in PROBLEMS:
        raise BadArgument("problem", f"unknown problem {name!r}; choose from {', '.join(PROBLEMS)}")
    check_params(name, params)
    check_size(name, params)
    try:
        return _make(name, params)
    except TypeError as err:
        raise ValueError(f"{name}: {err}") from None


def _make(name: str, params: dict[str, Any]) -> Problem:
    if name == "quadratic":
        law_args = {k: params.pop(k) for k in ("mean", "sd", "df", "values", "probs")
                    if k in params}
        kind = params.pop("noise", NOISE.default)
        return Quadratic(Law(kind, **law_args), **params)
    return PROBLEMS[name](**params)
