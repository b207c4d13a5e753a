"""Tests of the seed-003 reproduction (hyperopt_stacks): its transcription of the seed's
tables, the row summary and agreement count on hand-made results, and the --quick run end to
end."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from torch_impl.experiments import hyperopt_stacks as seed003


def test_seed_bold_rows_follow_the_one_point_rule() -> None:
    """The transcribed bold flags agree with the seed's numbers under our rule (> 1 point)."""
    for name, table in seed003.SEED_TABLES.items():
        for kappa, off, on, bold in table["rows"]:
            assert seed003.helps(off, on) == bold, (name, kappa)
    counts = {k: sum(r[3] for r in v["rows"]) for k, v in seed003.SEED_TABLES.items()}
    assert counts == {"SGD": 4, "Adam": 4, "AdaGrad": 6, "RMSProp": 3}
    assert [len(v["rows"]) for v in seed003.SEED_TABLES.values()] == [13, 10, 11, 12]


def test_summary_means_divergence_and_agreement() -> None:
    result = {
        "kappas": [0.0, 50, 0.01],
        # (kappas, [off, on], seeds=2)
        "errors": [[[10, 12], [10, 12]], [[30, 90], [20, 22]], [[5, 7], [5.5, 6.5]]],
        "diverged": [[[0, 0], [0, 0]], [[0, 1], [0, 0]], [[0, 0], [0, 0]]],
    }
    rows = seed003.summarise("SGD", result)
    assert rows[0]["seed"] is None and rows[0]["agree"] is None  # the kappa = 0 baseline
    assert rows[1]["ours"] == [60.0, 21.0] and rows[1]["diverged"] == [1, 0]
    assert rows[1]["ours_helps"] and rows[1]["seed_helps"] and rows[1]["agree"]
    assert rows[2]["ours"] == [6.0, 6.0] and not rows[2]["ours_helps"] and rows[2]["agree"]
    setting = seed003.Setting(seeds=2)
    text = seed003.render({"SGD": rows}, setting, 1.0, {"x": 1})
    assert "Rows where our pattern" in text and "2 of 2" in text
    assert "**60.00 (1/2 div.)**" in text and "**21.00**" in text
    assert "| 0 (primary alone) | 11.00 | 11.00 | 8.96 |" in text


def test_quick_run_writes_table_with_numbers(tmp_path) -> None:
    pytest.importorskip("mnist1d")
    assert seed003.main(["--quick", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "seed003.md").read_text()
    data = json.loads((tmp_path / "seed003.json").read_text())
    assert (tmp_path / "seed003.png").stat().st_size > 1000
    for name in seed003.SEED_TABLES:
        assert f"## {name} / SGD(kappa)" in text
    rows = [line for line in text.splitlines() if re.match(r"\| \d", line)]
    assert len(rows) == sum(len(k) for k in data["setting"]["kappas"].values()) == 12
    for line in rows:
        cells = [c.strip(" *") for c in line.strip("|").split("|")]
        ours = [float(c.split()[0]) for c in cells[1:3]]
        assert all(0.0 <= e <= 100.0 for e in ours)
    # the headline count is the number of rows whose pattern matches the seed's
    summary = [r for rows in data["summary"].values() for r in rows]
    agree = sum(r["ours_helps"] == r["seed_helps"] for r in summary)
    match = re.search(r"agrees with the seed's: (\d+) of (\d+)", text)
    assert match and (int(match[1]), int(match[2])) == (agree, len(summary))
    errors = [e for run in data["runs"].values() for k in run["errors"] for c in k for e in c]
    assert all(0.0 <= e <= 100.0 for e in errors)


def test_bad_max_epochs_is_rejected(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as done:
        seed003.main(["--max-epochs", "0", "--out", str(tmp_path)])
    assert done.value.code == 2 and "--max-epochs must be >= 1" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_setting_describe_is_text_and_to_dict_a_dict() -> None:
    setting = seed003.Setting(n_train=2_560, seeds=2)
    text = setting.describe()
    assert isinstance(text, str)
    assert "2560 training / 10000 test samples" in text and "(10 steps per epoch)" in text
    data = setting.to_dict()
    assert isinstance(data, dict) and data["n_train"] == 2_560 and data["seeds"] == 2
    assert set(data) == {f.name for f in dataclasses.fields(seed003.Setting)}
