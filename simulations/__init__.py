"""The Monte Carlo side of the toolkit: :mod:`simulations.engine` runs paths,
:mod:`simulations.verify` checks claims on them and holds the command line."""
