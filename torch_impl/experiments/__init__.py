"""Reproductions of three published clipping experiments, numbered 000, 001 and 003 ("seeds").

``python -m torch_impl.experiments NAME [--quick] [--out DIR]`` runs
``torch_impl.experiments.<NAME>.main(argv)``, which writes a Markdown table (ours beside the
seed's numbers), a JSON file with the raw numbers and PNG figures:

* ``norm_vs_value`` (seed 000): gradient norm scaling vs value clipping, regression MLP;
* ``ema_vs_fixed`` (seed 001): EMA-adaptive vs tuned fixed clipping in front of Adam, mnist1d;
* ``hyperopt_stacks`` (seed 003): averaged-norm clipping of the secondary SGD in
  hyperoptimizer stacks, mnist1d.

The seed ids ``seed000``, ``seed001``, ``seed003`` are accepted as aliases, and name the result
files (``seed000.md`` ...: the table of the seed's experiment). A full run writes into
``--out`` (default: the shipped results, ``torch_impl/experiments/results``); ``--quick`` is a
smoke run of under a minute that writes into ``--out`` (default ``runs/experiments-quick``) and
refuses the shipped results folder.
"""

EXPERIMENTS = {"norm_vs_value": "seed000", "ema_vs_fixed": "seed001",
               "hyperopt_stacks": "seed003"}
"""Module name -> the seed it reproduces, which is also the stem of its result files."""

ALIASES = {seed: name for name, seed in EXPERIMENTS.items()}
"""The seed ids accepted by the command line in place of the module names."""
