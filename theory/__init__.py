"""Pure mathematics of gradient clipping: schedules, clip rules, bounds, assumptions.

Uses numpy, scipy, sympy and mpmath only; imports no other package of clipverify and never
imports torch (the clip rules in :mod:`theory.clipping` are duck-typed and accept tensors).
"""
