"""Gradient clippers for ordinary PyTorch training.

Functional clippers in :mod:`torch_impl.clip`, clippers with state in
:mod:`torch_impl.stateful`, and :func:`attach_clipper` / :class:`ClippedOptimizer`
(:mod:`torch_impl.wrapper`) to clip before any optimizer's step; the public names of the
last two modules are importable from here.
"""

from torch_impl import stateful, wrapper
from torch_impl.stateful import *  # noqa: F403
from torch_impl.wrapper import *  # noqa: F403

__all__ = stateful.__all__ + wrapper.__all__
