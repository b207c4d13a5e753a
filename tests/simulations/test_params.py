"""Declared parameters (simulations.engine.params.Param): coercion to the declared type, ranges, the
command-line parsing, and that every owner's declarations match what it accepts."""

import inspect

import numpy as np
import pytest

from simulations.engine.params import Param, find, takers
from simulations.engine.problems import LAWS, PROBLEMS, problem_params
from simulations.engine.rules import PARAMS, RULE_PARAMS, ClipRule
from theory.errors import BadArgument

COUNT = Param("n", int, "a count", low=1)
POSITIVE = Param("lam", float, "a threshold", low=0, above=True)
FRACTION = Param("flip", float, "a fraction", low=0, high=1)
CHOICE = Param("kind", str, "a kind", choices=("a", "b"))
FLAG = Param("on", bool, "a switch")
LIST = Param("values", float, "numbers", many=True)


@pytest.mark.parametrize(("param", "value", "expected"), [
    (COUNT, 3, 3), (COUNT, 3.0, 3), (COUNT, np.int64(7), 7), (COUNT, np.float32(2.0), 2),
    (POSITIVE, 1, 1.0), (POSITIVE, np.float32(0.5), 0.5), (FRACTION, 0, 0.0),
    (FRACTION, 1, 1.0), (CHOICE, "b", "b"), (FLAG, False, False), (LIST, [1, 2.5], (1.0, 2.5)),
    (LIST, np.array([3, 4]), (3.0, 4.0)), (LIST, 2, 2.0),
])
def test_values_are_coerced_to_the_declared_type(param, value, expected):
    got = param.coerce(value)
    assert got == expected
    assert type(got) is type(expected)
    if isinstance(got, tuple):
        assert all(type(v) is float for v in got)


@pytest.mark.parametrize(("param", "value", "words"), [
    (COUNT, 10.5, "an integer >= 1"), (COUNT, 0, "an integer >= 1"), (COUNT, True, "integer"),
    (COUNT, "3", "integer"), (POSITIVE, 0.0, "a number > 0"), (POSITIVE, float("inf"), "> 0"),
    (POSITIVE, float("nan"), "> 0"), (FRACTION, 1.5, "in [0, 1]"), (CHOICE, "c", "one of a, b"),
    (FLAG, 1, "true or false"), (LIST, [1.0, "x"], "a finite number or a list"),
])
def test_bad_values_are_refused_in_one_line_naming_the_key(param, value, words):
    with pytest.raises(BadArgument) as error:
        param.coerce(value, "where.key")
    assert error.value.param == "where.key"
    assert words in error.value.message and "\n" not in str(error.value)


def test_command_line_words_are_parsed_as_declared():
    assert COUNT.parse("1e3") == 1000 and COUNT.parse("1_000") == 1000
    assert POSITIVE.parse("2") == 2.0
    for param, word in ((COUNT, "1.5"), (COUNT, "0"), (COUNT, "x"), (POSITIVE, "-1"),
                        (POSITIVE, "inf"), (CHOICE, "z")):
        with pytest.raises(ValueError):
            param.parse(word)
    assert Param("data_seed", int, "").flag == "--data-seed"


def test_rule_declarations_are_the_rules_fields_and_checks():
    assert {p.name for p in PARAMS} == {"lam", "eps", "ball"}
    fields = set(inspect.signature(ClipRule).parameters) - {"kind"}
    assert fields == {p.name for p in PARAMS}
    assert takers(RULE_PARAMS, "eps") == ("adaptive", "layerwise", "unitwise")
    assert takers(RULE_PARAMS, "ball") == ("projection",)


def test_problem_declarations_match_the_constructors():
    for name, factory in PROBLEMS.items():
        declared = {p.name for p in problem_params(name)}
        accepted = set(inspect.signature(factory).parameters) - {"law"}
        if "own_data" in accepted:  # a dataset or a data file in place of the generated data
            accepted = accepted - {"own_data"} | {"dataset", "data", "standardize"}
        if name == "quadratic":
            accepted |= {"noise"} | {p.name for params in LAWS.values() for p in params}
        assert declared == accepted, name
    # the defaults shown are the constructors' own
    assert find(problem_params("mlp-regression"), "hidden").default == 25
    assert find(problem_params("linear-regression"), "data_noise").default == 0.1
    assert find(problem_params("quadratic"), "sd").default == 1.0


def test_keep_int_keeps_integral_values_as_ints():
    """A float parameter with ``keep_int`` (the degrees of freedom): 3 and 3.0 are the int 3
    (the keys of runs written when df was an int do not change), 2.5 stays a float; the
    range still applies and the command line parses both."""
    df = Param("df", float, "ν", low=0, above=True, keep_int=True)
    for value, want in ((3, 3), (3.0, 3), (np.float64(7.0), 7), (2.5, 2.5), (0.7, 0.7)):
        got = df.coerce(value)
        assert got == want and type(got) is type(want)
    assert df.parse("2.5") == 2.5 and type(df.parse("4")) is int
    for bad in (0, -1.5, float("inf"), True):
        with pytest.raises(BadArgument, match="^df: expected a number > 0"):
            df.coerce(bad)
