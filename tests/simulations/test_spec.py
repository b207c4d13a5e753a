"""simulations.engine.spec: RunSpec as a value (round trip, hash, key against a hash computed here),
every key checked with an error naming it, the memory refusal against sizes counted here, and
the engine's interface (simulate with at most 3 parameters, TorchStep unchanged)."""

from __future__ import annotations

import hashlib
import inspect
import json
import math

import numpy as np
import pytest
import torch

from simulations.engine import run as engine
from simulations.engine.observers import checkpoint_steps, xi_anchor_steps
from simulations.engine.spec import CHAIN_KEYS, DEFAULTS, SAMPLE_KEYS, Chain, Execution, RunSpec
from theory.errors import BadArgument

BASE = {"problem": {"name": "quadratic", "noise": "discrete", "values": [0.0, 10.0],
                    "probs": [0.9, 0.1]},
        "clip": {"rule": "classic", "lam": 1}, "schedule": "1/(t+1)", "paths": 6, "steps": 12}


def spec(**changes) -> RunSpec:
    return RunSpec.from_dict({**BASE, **changes})


def test_to_dict_is_canonical_and_round_trips():
    run = spec(radii=[2.0, 0.5], record=["paths", "exits"])
    d = run.to_dict()
    assert d == {"problem": {"name": "quadratic", "noise": "discrete", "values": [0.0, 10.0],
                             "probs": [0.9, 0.1], "dim": 1, "curvature": 1.0},
                 "clip": {"rule": "classic", "lam": 1.0}, "schedule": "1/(t+1)", "paths": 6,
                 "steps": 12, "batch": 1, "seed": 0, "dtype": "float64", "guard": None,
                 "record": ["exits", "paths"], "radii": [2.0, 0.5], "keep_paths": 8,
                 "xi_paths": 1024}
    again = RunSpec.from_dict(json.loads(json.dumps(d)))
    assert again == run and hash(again) == hash(run) and again.key() == run.key()
    assert {run, again} == {run}
    with pytest.raises(AttributeError):
        run.paths = 7  # frozen
    with pytest.raises(TypeError):
        run.problem["noise"] = "normal"  # the problem's table too


def test_key_is_sha256_of_the_canonical_json():
    run = spec()
    text = json.dumps(run.to_dict(), sort_keys=True, separators=(",", ":"))
    assert run.key() == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert len(run.key()) == 16


def test_key_is_the_one_the_store_has_always_used():
    """The key of a fixed spec, computed on main before RunSpec held a Chain (8909e39f51dff596),
    is the SHA-256 of its canonical JSON written out here by hand: the saved runs' keys stay
    valid."""
    run = RunSpec.from_dict({
        "problem": {"name": "quadratic", "noise": "normal", "mean": 100, "sd": 1.0},
        "clip": {"rule": "classic", "lam": 1}, "schedule": "1/(t+1)", "paths": 1000,
        "steps": 500, "seed": 3, "radii": [2, 0.5], "record": ["paths", "exits", "xi"]})
    text = ('{"batch":1,"clip":{"lam":1.0,"rule":"classic"},"dtype":"float64","guard":null,'
            '"keep_paths":8,"paths":1000,"problem":{"curvature":1.0,"dim":1,"mean":100.0,'
            '"name":"quadratic","noise":"normal","sd":1.0},"radii":[2.0,0.5],'
            '"record":["exits","paths","xi"],"schedule":"1/(t+1)","seed":3,"steps":500,'
            '"xi_paths":1024}')
    assert run.key() == hashlib.sha256(text.encode()).hexdigest()[:16] == "8909e39f51dff596"
    assert set(run.to_dict()) == {*CHAIN_KEYS, *SAMPLE_KEYS}


def test_a_run_is_a_chain_and_a_sample():
    run = spec(seed=4, radii=[2.0], batch=2, guard=1e5)
    chain = run.chain
    assert isinstance(chain, Chain)
    assert chain.to_dict() == {k: v for k, v in run.to_dict().items() if k in CHAIN_KEYS}
    assert Chain.from_dict(chain.to_dict()) == chain
    assert Chain.from_dict(json.loads(json.dumps(chain.to_dict()))).key() == chain.key()
    for key in CHAIN_KEYS:  # the chain's fields read through the spec
        assert getattr(run, key) == getattr(chain, key), key
    assert run.make_problem() is chain.make_problem()
    assert run.schedule_obj().source == chain.schedule_obj().source
    # the sample changes the run, not the chain
    other = run.replace(paths=7, record=["exits"], radii=[1.0], xi_paths=3)
    assert other.chain == chain and other.chain.key() == chain.key() and other.key() != run.key()
    assert run.replace(seed=5).chain != chain
    with pytest.raises(AttributeError):
        chain.steps = 3  # frozen


@pytest.mark.parametrize("change, param", [
    (dict(steps=-1), "steps"), (dict(seed=-1), "seed"), (dict(batch=0), "batch"),
    (dict(dtype="float16"), "dtype"), (dict(guard=0.0), "guard"),
    (dict(schedule="1/t"), "schedule"), (dict(clip={"rule": "classic"}), "clip.lam"),
    (dict(problem={"name": "nope"}), "problem.name"),
    (dict(paths=10), "paths"),  # the sample's keys are not the chain's
])
def test_chain_keys_are_checked_and_named(change, param):
    data = {k: v for k, v in BASE.items() if k != "paths"}
    with pytest.raises(BadArgument) as error:
        Chain.from_dict({**data, **change})
    assert error.value.param == param and "\n" not in str(error.value)
    with pytest.raises(BadArgument, match="^chain.steps: required"):
        Chain.from_dict({k: v for k, v in data.items() if k != "steps"},
                        names={"steps": "chain.steps"})


NORMAL = {"name": "quadratic", "noise": "normal", "mean": 100.0, "sd": 1.0, "theta0": 0.0}


@pytest.mark.parametrize(("one", "other"), [
    (dict(problem={**NORMAL, "mean": 100}), dict(problem=NORMAL)),
    (dict(problem={**NORMAL, "theta0": 0}), dict(problem=NORMAL)),
    (dict(problem={"name": "quadratic", "noise": "student-t", "df": 3.0}),
     dict(problem={"name": "quadratic", "noise": "student-t", "df": 3})),
    (dict(problem={**BASE["problem"], "values": [0, 10]}), dict()),
    (dict(problem={"name": "logistic", "n": 50.0, "dim": 2, "flip": 0}),
     dict(problem={"name": "logistic", "n": 50, "dim": 2.0, "flip": 0.0})),
    (dict(problem={**NORMAL, "curvature": None}), dict(problem=NORMAL)),
    (dict(clip={"rule": "classic", "lam": 1}), dict(clip={"rule": "classic", "lam": 1.0})),
    (dict(clip={"rule": "projection", "ball": 2}), dict(clip={"rule": "projection", "ball": 2.0})),
    (dict(radii=[2]), dict(radii=[2.0])),
    (dict(paths=10.0, steps=12.0), dict(paths=10, steps=12)),
])
def test_two_spellings_of_one_run_have_one_key(one, other):
    a, b = spec(**one), spec(**other)
    assert a == b and a.key() == b.key()
    assert RunSpec.from_dict(a.to_dict()) == a
    assert json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)


def test_coerced_values_have_the_declared_types_and_different_values_different_keys():
    run = spec(problem={**NORMAL, "mean": 100, "dim": 2.0}, clip={"rule": "adaptive", "lam": 1,
                                                                 "eps": 1})
    assert run.to_dict()["problem"] == {"name": "quadratic", "noise": "normal", "mean": 100.0,
                                        "sd": 1.0, "theta0": 0.0, "dim": 2,
                                        "curvature": 1.0}
    assert type(run.problem["mean"]) is float and type(run.problem["dim"]) is int
    assert run.to_dict()["clip"] == {"rule": "adaptive", "lam": 1.0, "eps": 1.0}
    assert spec(problem={**NORMAL, "mean": 101}).key() != spec(problem=NORMAL).key()
    assert spec(clip={"rule": "classic", "lam": 2}).key() != spec().key()
    assert spec(radii=[3]).key() != spec(radii=[2.0]).key()


@pytest.mark.parametrize(("change", "param", "words"), [
    (dict(paths=10.5), "paths", "integer"),
    (dict(problem={"name": "logistic", "n": 10.5}), "problem.n", "an integer >= 1"),
    (dict(problem={**NORMAL, "df": 3}), "problem.df", "the normal law does not take it"),
    (dict(problem={"name": "linear-regression", "noise": 0.1}), "problem.noise", "data_noise"),
    (dict(problem={"name": "linear-regression", "data_noise": -1}), "problem.data_noise", ">= 0"),
    (dict(clip={"rule": "classic", "lam": 1.0, "eps": 0.5}), "clip.eps",
     "the classic rule does not take it"),
    (dict(clip={"rule": "projection"}), "clip.ball", "the projection rule needs it"),
    (dict(clip={"rule": "projection", "radius": 1.0}), "clip.radius", "unknown key"),
])
def test_declared_types_and_owners_refuse_in_one_line(change, param, words):
    with pytest.raises(BadArgument) as error:
        spec(**change)
    assert error.value.param == param
    assert words in error.value.message and "\n" not in str(error.value)


def test_key_tells_apart_what_changes_the_numbers_and_only_that():
    base = spec()
    for change in (dict(seed=1), dict(paths=7), dict(keep_paths=3), dict(xi_paths=5),
                   dict(record=["exits", "xi"]), dict(radii=[1.0]), dict(dtype="float32"),
                   dict(guard=1e6), dict(schedule="2/(t+2)"), dict(clip={"rule": "none"})):
        assert spec(**change).key() != base.key(), change
    # the same run written differently: the same key
    assert spec(record=["paths", "exits", "running_max", "claim2", "clipped", "checkpoints",
                        "exits"]).key() == base.key()
    assert spec(clip={"rule": "classic", "lam": 1.0}).key() == base.key()
    assert spec(record=["exits"], keep_paths=3).key() == spec(record=["exits"]).key()
    assert spec(record=["exits"]).keep_paths == 0  # nothing kept without the paths observer


def test_the_defaults_live_in_one_place():
    run = spec()
    for key, value in DEFAULTS.items():
        got = getattr(run, key)
        assert (list(got) if isinstance(got, tuple) else got) == (
            list(value) if isinstance(value, tuple) else value), key
    assert DEFAULTS["keep_paths"] == 8


@pytest.mark.parametrize("change, param", [
    (dict(paths="10"), "paths"), (dict(paths=0), "paths"), (dict(paths=2.5), "paths"),
    (dict(paths=True), "paths"), (dict(steps=-1), "steps"), (dict(batch=0), "batch"),
    (dict(seed=-1), "seed"), (dict(keep_paths=-1), "keep_paths"), (dict(xi_paths=0), "xi_paths"),
    (dict(dtype="float16"), "dtype"), (dict(guard=0.0), "guard"), (dict(guard="x"), "guard"),
    (dict(record=["exits", "nope"]), "record"), (dict(radii=[0.0]), "radii"),
    (dict(radii=[float("inf")]), "radii"), (dict(schedule="1/t"), "schedule"),
    (dict(schedule=[1]), "schedule"), (dict(walkers=3), "walkers"),
    (dict(clip={"rule": "classic"}), "clip.lam"), (dict(clip={"rule": "clip-all"}), "clip.rule"),
    (dict(clip={"rule": "classic", "lam": "1"}), "clip.lam"),
    (dict(clip={"rule": "classic", "lam": 1.0, "gamma": 2}), "clip.gamma"),
    (dict(problem={"name": "nope"}), "problem.name"),
    (dict(problem={"name": "quadratic", "sd": 0.0}), "problem.sd"),
    (dict(problem={"name": "quadratic", "dim": 0}), "problem.dim"),
    (dict(problem={"name": "quadratic", "noise": "discrete", "values": [1.0],
                   "probs": [0.5]}), "problem.probs"),
    (dict(problem={"name": "quadratic", "bogus": 1}), "problem.bogus"),
])
def test_every_key_is_checked_and_named(change, param):
    with pytest.raises(BadArgument) as error:
        spec(**change)
    assert error.value.param == param
    assert str(error.value).startswith(f"{param}: ")
    assert "\n" not in str(error.value)


def test_required_keys_and_the_callers_names():
    for key in ("problem", "clip", "schedule", "paths", "steps"):
        data = {k: v for k, v in BASE.items() if k != key}
        with pytest.raises(BadArgument, match=f"^{key}: required"):
            RunSpec.from_dict(data)
    with pytest.raises(BadArgument) as error:
        RunSpec.from_dict({**BASE, "paths": "10"}, names={"paths": "run.paths"})
    assert str(error.value) == "run.paths: expected an integer >= 1, got '10'"


def test_objects_it_names():
    run = spec(problem={"name": "stiff", "kind": "far", "dim": 2}, schedule=0.5,
               clip={"rule": "adaptive", "lam": 2, "eps": 0.5})
    assert run.make_problem() is run.make_problem()  # built once
    assert run.make_problem().n_params == 2
    rule = run.make_rule()
    assert (rule.kind, rule.lam, rule.eps) == ("adaptive", 2.0, 0.5)
    np.testing.assert_array_equal(run.schedule_obj()(np.arange(3)), [0.5, 0.5, 0.5])
    assert run.torch_dtype() is torch.float64


def test_memory_refusal_against_sizes_counted_here():
    """The arrays of a run, counted by hand: per path θ(T) (P numbers), blown_step, two exit
    steps per radius, the two running maxima and two numbers per checkpoint (the observers
    recorded: not claim2 and clipped); keep·(T+1)·P for the kept paths; per ξ path ξ (P),
    ‖ξ‖ per checkpoint, ξ and the sup per anchor, and two."""
    run = spec(paths=100, steps=50, radii=[1.0, 2.0], keep_paths=7, xi_paths=9,
               record=["exits", "running_max", "checkpoints", "paths", "xi"])
    p, ck, an = 3, len(checkpoint_steps(50)), len(xi_anchor_steps(50))
    want = {"paths": 100 * (8 * p + 8 * (1 + 2 * 2 + 2 + 2 * ck)),
            "keep_paths": 7 * 51 * p * 8,
            "xi_paths": 9 * 8 * (p + ck + an * (p + 1) + 2)}
    assert run.result_bytes(p) == want
    need = 2 * sum(want.values()) + 16 * 50  # and a(t), t
    run.check_memory(p, available=need)  # fits exactly
    with pytest.raises(BadArgument) as error:
        run.check_memory(p, available=need - 1)
    assert error.value.param == "paths" and "KiB" in error.value.message


def test_a_long_schedule_is_counted():
    """a(t) and t take 16 bytes a step even where no array records the steps."""
    run = spec(paths=1, steps=4 * 10**9, record=["exits"])
    with pytest.raises(BadArgument) as error:
        run.check_memory(1, available=2**30)
    assert error.value.param == "steps" and "59.6 GiB" in error.value.message


@pytest.mark.parametrize("change, param, unit", [
    (dict(paths=10**12), "paths", "TiB"),
    (dict(paths=10**6, keep_paths=10**6, steps=10**6), "keep_paths", "TiB"),
])
def test_huge_runs_are_refused_before_anything_is_allocated(change, param, unit):
    with pytest.raises(BadArgument) as error:
        engine.simulate(spec(**change))
    assert error.value.param == param and unit in error.value.message
    assert "would need about" in error.value.message


def test_execution_is_checked():
    for kwargs, param in ((dict(backend="gpu"), "backend"), (dict(chunk_size=0), "chunk_size"),
                          (dict(checkpoint_every=0), "checkpoint_every"),
                          (dict(replica_chunk=0), "replica_chunk")):
        with pytest.raises(BadArgument) as error:
            Execution(**kwargs)
        assert error.value.param == param
    with pytest.raises(BadArgument, match="device"):
        engine.simulate(spec(), Execution(device="nope"))


def test_engine_interface():
    """simulate takes at most 3 parameters; TorchStep keeps its constructor and fn (the
    rare-event splitting estimator calls them)."""
    params = inspect.signature(engine.simulate).parameters
    assert list(params) == ["run", "execution"] and len(params) <= 3
    assert list(inspect.signature(engine.TorchStep.__init__).parameters) == [
        "self", "problem", "rule", "guard", "need_step", "dtype", "device", "compile"]
    assert list(inspect.signature(engine.TorchStep._step).parameters) == [
        "self", "theta", "tnorm", "alive", "blown", "words", "at", "done"]
    run = spec()
    step = engine.TorchStep(run.make_problem(), run.make_rule(), 1e100, False, torch.float64,
                             "cpu", False)
    theta = torch.zeros(2, 1, dtype=torch.float64)
    words = torch.zeros(2, run.make_problem().words_per_sample, dtype=torch.int32)
    out = step.fn(theta, torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.bool),
                  torch.full((2,), -1), words, torch.tensor(0.5, dtype=torch.float64),
                  torch.tensor(1))
    assert len(out) == 7 and out[0].shape == (2, 1)


def test_a_simulation_carries_its_spec_and_the_same_spec_gives_the_same_arrays():
    run = spec(record=["exits", "paths"], radii=[1.0])
    first, second = engine.simulate(run), engine.simulate(
        RunSpec.from_dict(run.to_dict()), Execution(chunk_size=4, progress=False))
    assert first.run == run and first.setting["paths"] == 6
    for key in first.arrays:
        np.testing.assert_array_equal(first.arrays[key], second.arrays[key], err_msg=key)


def test_a_damaged_checkpoint_is_refused_naming_resume(tmp_path):
    (tmp_path / "state.pt").write_bytes(b"\x80\x02truncated")
    with pytest.raises(BadArgument) as error:
        engine.simulate(spec(), Execution(checkpoint_dir=tmp_path, resume=True))
    assert error.value.param == "resume" and "damaged" in error.value.message


def test_values_and_callables_as_schedules_run_like_the_same_text():
    """A schedule given as values or as a Python callable is kept as its values a(0..T−1); the
    run equals, bit for bit, the run of the text that gives the same values, and reads back
    through to_dict / from_dict (and JSON) unchanged."""
    import json

    from simulations.engine.run import simulate

    base = dict(problem={"name": "quadratic", "noise": "normal", "mean": 100.0, "sd": 1.0},
                clip={"rule": "classic", "lam": 1.0}, paths=32, steps=40, radii=[1.0])
    text = RunSpec.from_dict({**base, "schedule": "0.1*0.5**floor(t/10)"})
    values = [0.1 * 0.5 ** (t // 10) for t in range(40)]
    listed = RunSpec.from_dict({**base, "schedule": values})
    called = RunSpec.from_dict({**base, "schedule": lambda t: 0.1 * 0.5 ** np.floor(
        np.asarray(t) / 10)})
    assert listed == called and listed.schedule == tuple(values)
    assert RunSpec.from_dict(json.loads(json.dumps(listed.to_dict()))) == listed
    a, b = simulate(text), simulate(called)
    np.testing.assert_array_equal(a.arrays["endpoints"], b.arrays["endpoints"])
    # far target, classic λ = 1: every step has length a(t), so θ(T) = Σ a(t)
    np.testing.assert_allclose(b.arrays["endpoints"][:, 0], math.fsum(values), rtol=1e-12)
    with pytest.raises(BadArgument, match="schedule"):
        RunSpec.from_dict({**base, "schedule": values[:10]})  # shorter than the horizon
    with pytest.raises(BadArgument, match="schedule"):
        RunSpec.from_dict({**base, "schedule": [*values[:-1], -1.0]})


def test_a_left_out_parameter_and_its_spelled_out_default_are_one_run():
    """The quadratic's defaults are d = 1, L = 1 and the standard normal law (its docstring);
    a spec that leaves them out and one that writes them are the same run, with one key, and a
    law's parameters are filled in only for the law that takes them."""
    def key(**problem):
        return RunSpec.from_dict({"problem": {"name": "quadratic", **problem},
                                  "clip": {"rule": "classic", "lam": 1},
                                  "schedule": "1/(t+1)", "paths": 4, "steps": 3}).key()

    assert key() == key(noise="normal", mean=0, sd=1, dim=1, curvature=1)
    assert key() != key(mean=0.5) and key() != key(dim=2)
    discrete = {"noise": "discrete", "values": [-1, 1], "probs": [0.5, 0.5]}
    assert key(**discrete) == key(**discrete, dim=1)
    with pytest.raises(BadArgument, match="mean"):  # not filled in for the discrete law
        RunSpec.from_dict({"problem": {"name": "quadratic", **discrete, "mean": 0.0},
                           "clip": {"rule": "classic", "lam": 1}, "schedule": "1",
                           "paths": 4, "steps": 3})
