"""Figures and tables for a write-up: ``python -m paper_figs [--quick] [--out DIR] [--from DIR]``,
and the figures of a user's scenario: ``python -m paper_figs --scenario my.toml``.

One module per figure (``fig_*.py``), each with ``NAME`` and ``make(ctx) -> list[Path]``, and
the claims it shows for a scenario, ``CLAIMS`` and ``draw_scenario(ctx, scenario, sim, name)``
(:mod:`paper_figs.scenario`), drawn by the same functions as the built-in figure; they share the
style of :mod:`paper_figs.style`, the CSV layout of :mod:`paper_figs.data` and the run store of
:mod:`simulations.engine.store` (through :func:`paper_figs.runs.simulation`).
"""
