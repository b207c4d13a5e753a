"""The Monte Carlo engine: problems, clip rules, samplers, the kernel, observers, the mean field,
run specs and the store, rare-event splitting. It imports :mod:`theory` and never
:mod:`simulations.verify`."""
