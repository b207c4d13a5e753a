"""Figures and tables for a write-up: ``python -m paper_figs [--quick] [--out DIR] [--from DIR]``.

One module per figure (``fig_*.py``), each with ``NAME`` and ``make(ctx) -> list[Path]``; they
share the style of :mod:`paper_figs.style`, the CSV layout of :mod:`paper_figs.data` and the
run store of :mod:`simulations.store` (through :func:`paper_figs.runs.simulation`).
"""
