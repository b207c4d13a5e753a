"""Scenarios, claims, suites, reports and the command line; built on :mod:`simulations.engine`."""
