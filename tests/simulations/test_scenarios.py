"""simulations.verify.scenarios: a scenario's one-line describe() and its to_dict(), and the renamed
keys (data_noise, ball) in scenario files."""

import pytest

from simulations.verify.scenarios import load_scenario, scenario_from_dict

BASE = {"name": "walk", "claims": ["L1-det"],
        "problem": {"name": "quadratic", "noise": "normal", "mean": 100, "sd": 1, "theta0": 0},
        "clip": {"rule": "classic", "lam": 1}, "run": {"schedule": "1/(t+1)", "paths": 8,
                                                       "steps": 4}}


def test_describe_is_one_line_and_to_dict_the_values():
    sc = scenario_from_dict(BASE)
    assert sc.describe() == ("walk: quadratic (y ~ N(100, 1²)), classic clipping, λ = 1, "
                             "a(t) = 1/(t+1), 8 paths × 4 steps")
    d = sc.to_dict()
    assert d["problem"] == {"name": "quadratic", "noise": "normal", "mean": 100.0, "sd": 1.0,
                            "theta0": 0.0, "dim": 1, "curvature": 1.0}  # the defaults filled in
    assert d["clip"] == {"rule": "classic", "lam": 1.0}
    assert (d["name"], d["paths"], d["steps"], d["claims"]) == ("walk", 8, 4, ["L1-det"])


def test_a_scenario_file_with_the_old_noise_key_of_a_regression_is_refused(tmp_path):
    path = tmp_path / "old.toml"
    path.write_text('claims = ["A2"]\n[problem]\nname = "linear-regression"\nnoise = 0.1\n'
                    '[clip]\nrule = "classic"\nlam = 1.0\n[run]\nschedule = "0.01"\npaths = 2\n'
                    'steps = 2\n', encoding="utf-8")
    with pytest.raises(ValueError) as error:
        load_scenario(path)
    text = str(error.value)
    assert "\n" not in text and "problem.noise" in text and "data_noise" in text


def test_the_projection_ball_is_the_clip_key_ball():
    sc = scenario_from_dict({**BASE, "claims": ["A2"],
                             "clip": {"rule": "projection", "ball": 3}})
    assert sc.make_rule().ball == 3.0 and sc.clip == {"rule": "projection", "ball": 3.0}
    with pytest.raises(ValueError, match="clip.radius: unknown key"):
        scenario_from_dict({**BASE, "claims": ["A2"],
                            "clip": {"rule": "projection", "radius": 3.0}})
