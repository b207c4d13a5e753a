r"""The declarations the command line reads before it runs anything, in a module that imports
neither torch nor scipy (only numpy, through :mod:`simulations.engine.params`), so that
``python -m simulations --help`` starts fast.

Declared here once and imported by their owners: the problems' and laws' parameters
(:data:`PROBLEM_PARAMS`, :data:`LAWS`; :mod:`simulations.engine.problems` gives them to its
classes),
the clip rules' (:data:`RULE_PARAMS`, re-exported by :mod:`simulations.engine.rules`), the names of
:mod:`simulations.engine.rare`'s events and importance functions, the observers' names
(:data:`OBSERVERS`, :mod:`simulations.engine.observers`) and the engine's default memory budget
(:data:`MEMORY_BUDGET`, :mod:`simulations.engine.run`).

Copied here (``tests/simulations/test_startup.py`` holds the copy equal to its owner's): each
problem's constructor defaults (:func:`problem_params`, equal to
:func:`simulations.engine.problems.problem_params`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from simulations.engine.params import Param

__all__ = ["EVENTS", "GENERATED", "IMPORTANCE", "LAWS", "MEMORY_BUDGET", "OBSERVERS", "PARAMS",
           "PROBLEM_NAMES", "PROBLEM_PARAMS", "RULES", "RULE_PARAMS", "problem_params"]

#: the observers of :mod:`simulations.engine.observers`, in its order
OBSERVERS = ("exits", "running_max", "claim2", "clipped", "checkpoints", "paths", "xi")
#: bytes of working memory a chunk of the engine may use by default (512 MiB)
MEMORY_BUDGET = 1 << 29
#: the scores z of :func:`simulations.engine.rare.ams`
EVENTS = ("exit", "xi", "blowup")
#: the importance functions of :func:`simulations.engine.rare.ams`
IMPORTANCE = ("scaled", "max")

# ---- clip rules -------------------------------------------------------------------------------
LAM = Param("lam", float, "threshold λ", low=0, above=True)
EPS = Param("eps", float, "ε, the floor of ‖θ‖ in the adaptive threshold λ·max(‖θ‖, ε)",
            low=0, above=True)
BALL = Param("ball", float, "radius of the projection rule's ball ‖θ‖ ≤ ball", low=0,
             above=True)
#: every rule parameter (a field of :class:`simulations.engine.rules.ClipRule`)
PARAMS = (LAM, EPS, BALL)
#: each rule with the parameters it takes, all of them required
RULE_PARAMS: dict[str, tuple[Param, ...]] = {
    "none": (), "classic": (LAM,), "adaptive": (LAM, EPS), "layerwise": (LAM, EPS),
    "unitwise": (LAM, EPS), "value": (LAM,), "projection": (BALL,)}
#: the rules' names
RULES = tuple(RULE_PARAMS)

# ---- problems: the parameters, declared once (shared by the problems that take them) ----------
N = Param("n", int, "dataset size", low=1)
DIM_X = Param("dim", int, "dimension of the inputs x", low=1)
DIM_THETA = Param("dim", int, "dimension of θ", low=1)
HIDDEN = Param("hidden", int, "hidden units of the MLP", low=1)
DATA_NOISE = Param("data_noise", float, "noise of sklearn's make_regression", low=0)
DATA_SEED = Param("data_seed", int, "seed of the generated dataset", low=0)
INIT_SEED = Param("init_seed", int, "seed of the network's initial point", low=0)
CURVATURE = Param("curvature", float, "L in ℓ = (L/2)‖θ − y‖² (negative: concave)")
THETA0 = Param("theta0", float, "θ(0), the same on every path: one number (quadratic, stiff: "
                                "every coordinate) or all P numbers", many=True)
DATASET = Param("dataset", str, "scikit-learn's shipped dataset (breast_cancer, digits, diabetes, "
                                 "wine, iris; mlp-classification also the generated blobs, "
                                 "mnist1d)",
                choices=("breast_cancer", "digits", "diabetes", "wine", "iris", "blobs",
                         "mnist1d"))
DATA = Param("data", str, "a data file: .npz with arrays X (n, d) and y (n,), or .csv with y "
                          "in the last column (in a scenario: relative to its file)")
STANDARDIZE = Param("standardize", bool, "z-score the features of a dataset or data file (and "
                                         "a regression's target); default true")
#: a dataset or a data file in place of the generated data (simulations.engine.data)
OWN_DATA = (DATASET, DATA, STANDARDIZE)
MEAN = Param("mean", float, "mean of y", default=0.0)
SD = Param("sd", float, "scale of y", default=1.0, low=0, above=True)
DF = Param("df", float, "degrees of freedom ν of y (any real ν > 0)", default=3, low=0,
           above=True, keep_int=True)
VALUES = Param("values", float, "atoms v_k of y = v_k·(1, …, 1)", many=True)
PROBS = Param("probs", float, "probabilities p_k of the atoms v_k", low=0, high=1,
              many=True)
#: each law of the quadratic's target y with the parameters it takes
LAWS: dict[str, tuple[Param, ...]] = {"normal": (MEAN, SD), "student-t": (MEAN, SD, DF),
                                      "discrete": (VALUES, PROBS), "point": (MEAN,)}
NOISE = Param("noise", str, "law of the quadratic's target y", default="normal",
              choices=tuple(LAWS))

#: each problem of :data:`simulations.engine.problems.PROBLEMS` (in its order) with its ``PARAMS``
PROBLEM_PARAMS: dict[str, tuple[Param, ...]] = {
    "quadratic": (NOISE, MEAN, SD, DF, VALUES, PROBS, DIM_THETA, CURVATURE, THETA0),
    "linear-regression": (N, DIM_X, DATA_NOISE, DATA_SEED, THETA0, *OWN_DATA),
    "logistic": (N, DIM_X,
                 Param("separable", bool, "separable labels (--no-separable flips a fraction "
                                          "--flip of them)"),
                 Param("flip", float, "fraction of labels flipped when not separable", low=0,
                       high=1),
                 DATA_SEED, THETA0, *OWN_DATA),
    "mlp-regression": (N, DIM_X, HIDDEN, DATA_NOISE, DATA_SEED, INIT_SEED, THETA0, *OWN_DATA),
    "mlp-classification": (
        replace(DATASET, default="blobs"), N, DIM_X,
        Param("classes", int, "classes of the blobs dataset", low=1), HIDDEN,
        DATA_SEED, INIT_SEED, THETA0, DATA, STANDARDIZE),
    "rnn-cliff": (Param("n", int, "number of x_0 points", low=1),
                  Param("length", int, "length of the recurrence x_k = w·tanh(x_{k−1}) + b",
                        low=1),
                  Param("target", float, "the wanted x_length"), DATA_SEED, THETA0),
    "stiff": (Param("kind", str, "which loss of the stiff family",
                    choices=("stiff", "far", "concave")),
              DIM_THETA, CURVATURE, Param("target", float, "y in ℓ = (L/2)‖θ − y‖²"), THETA0),
    "module": (Param("module", str, "a Python file defining n, theta0 and loss(theta, batch) "
                                    "(docs/own-problem.md; in a scenario: relative to its "
                                    "file)"),),
}
#: the parameters that describe generated data, which a dataset or a data file replaces
GENERATED = ("n", "dim", "classes", "data_noise", "separable", "flip", "data_seed")
#: the problems' names, in the catalog's order
PROBLEM_NAMES = tuple(PROBLEM_PARAMS)
#: each problem's constructor defaults that are not None (a copy of the constructors')
_DEFAULTS: dict[str, dict[str, Any]] = {
    "quadratic": {"dim": 1, "curvature": 1.0},
    "linear-regression": {"n": 1000, "dim": 20, "data_noise": 0.1, "data_seed": 0},
    "logistic": {"n": 200, "dim": 2, "separable": True, "flip": 0.1, "data_seed": 0},
    "mlp-regression": {"n": 1000, "dim": 20, "hidden": 25, "data_noise": 0.1, "data_seed": 0,
                       "init_seed": 0},
    "mlp-classification": {"dataset": "blobs", "n": 600, "dim": 10, "classes": 3,
                           "hidden": 32, "data_seed": 0, "init_seed": 0},
    "rnn-cliff": {"n": 32, "length": 50, "target": 0.7, "data_seed": 0},
    "stiff": {"kind": "stiff", "dim": 1},
    "module": {},
}


def problem_params(name: str) -> tuple[Param, ...]:
    """The parameters problem ``name`` declares, each with its default (the constructor's;
    None where the problem chooses): :func:`simulations.engine.problems.problem_params` without
    importing the problems."""
    defaults = _DEFAULTS[name]
    return tuple(replace(p, default=defaults[p.name]) if p.name in defaults else p
                 for p in PROBLEM_PARAMS[name])
