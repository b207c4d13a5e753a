"""A problem of your own for a scenario (``[problem] module = "my_problem.py"``): logistic
regression on scikit-learn's breast cancer data, written in torch. The protocol
(docs/own-problem.md): ``n``, ``theta0``, ``loss(theta, batch)`` and optionally
``minibatch(index)`` and ``layers``.

It is the built-in ``logistic`` problem with ``dataset = "breast_cancer"`` written by hand, so
the two give the same paths (tests/simulations/test_own_data.py holds them to 1e-12).
"""

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer

_data = load_breast_cancer()
_x = _data.data - _data.data.mean(axis=0)
_x = torch.as_tensor(_x / np.sqrt((_x**2).mean(axis=0)))  # z-scored features, (n, 30)
_y = torch.as_tensor(_data.target, dtype=torch.float64)    # labels 0/1, (n,)

n = len(_y)                          # the dataset size: indices are drawn uniform on 0..n-1
theta0 = [0.0] * (_x.shape[1] + 1)   # θ(0): the weights, then the bias
layers = [("weight", (1, _x.shape[1])), ("bias", (1,))]


def minibatch(index):
    """The samples of an (R, B) index tensor: x (R, B, 30) and y (R, B)."""
    return _x[index], _y[index]


def loss(theta, batch):
    """Each row's minibatch-mean binary cross-entropy log(1 + e^f) − y·f, f = w·x + b: (R,)."""
    x, y = batch
    f = torch.einsum("rbd,rd->rb", x.to(theta.dtype), theta[:, :-1]) + theta[:, -1:]
    return (torch.nn.functional.softplus(f) - y.to(theta.dtype) * f).mean(1)
