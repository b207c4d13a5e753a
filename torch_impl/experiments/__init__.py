"""Reproductions of the published clipping experiments (``/work/shared/seeds``).

``python -m torch_impl.experiments seed000|seed001|seed003 [--quick] [--out DIR]`` runs
``torch_impl.experiments.<name>.main(argv)``, which writes a Markdown table (ours beside the
seed's numbers), a JSON file with the raw numbers and PNG figures into ``--out``
(default ``torch_impl/experiments/results``). ``--quick`` is a smoke run of under a minute.
"""

EXPERIMENTS = ("seed000", "seed001", "seed003")
