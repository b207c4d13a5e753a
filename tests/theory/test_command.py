"""The bottom layer every command and package uses (:mod:`theory.errors`,
:mod:`theory.command`, :mod:`theory.records`): each way a command ends as one line, the number
checks, and that nothing above keeps a copy of them."""

from __future__ import annotations

import gc
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from theory.command import exit, flag_of, lasting_imports, main, read_integer
from theory.errors import BadArgument, integer, positive, real
from theory.records import to_json

ROOT = Path(__file__).resolve().parents[2]


def ends(error: BaseException | None, capsys) -> tuple[int, list[str]]:
    def command(argv):
        if error is not None:
            raise error
        return 0

    status = main(command, [], prog="prog", flags={"clip.rule": "clip"})
    return status, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("error, status, line", [
    (None, 0, None),
    (BadArgument("theta0_norm", "bad\nvalue"), 2, "prog: error: argument --theta0-norm: bad value"),
    (BadArgument("clip.rule", "unknown"), 2, "prog: error: argument --clip: unknown"),
    (ValueError("file.toml: run.paths: no"), 2, "prog: error: file.toml: run.paths: no"),
    (OSError(28, "No space left on device", "out/x"), 1,
     "prog: error: out/x: No space left on device"),
    (MemoryError(), 1, "prog: error: out of memory"),
    (RuntimeError("a bug"), 1, "prog: error: internal error: RuntimeError: a bug"),
    (RecursionError("deep"), 1, "prog: error: internal error: RecursionError: deep"),
    (KeyboardInterrupt(), 130, "prog: interrupted"),
])
def test_every_end_is_one_line(error, status, line, capsys):
    assert ends(error, capsys) == (status, [] if line is None else [line])


def test_exit_freezes_what_is_alive_so_the_interpreter_ends_quickly():
    """exit() freezes the objects alive (the interpreter's last collections skip them); the
    exit after Ctrl-C (130, os._exit) is checked in a subprocess by paper_figs' test_one_line."""
    gc.unfreeze()
    try:
        with pytest.raises(SystemExit) as end:
            exit(3)
        assert end.value.code == 3
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()


def test_lasting_imports_collect_nothing_and_freeze_what_they_made(tmp_path, monkeypatch):
    """Inside the block no collection runs, though the block makes enough cyclic objects to
    trigger hundreds; after a block that imported a module they are frozen, after one that
    imported nothing they are not, and the collector is as it was."""
    (tmp_path / "lasting_imports_probe.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    runs = []

    def count(phase, info):
        if phase == "start":
            runs.append(info["generation"])

    def cycles():
        made = []
        for _ in range(100_000):  # 100 000 two-object cycles: > 700 allocations many times
            a: list = []
            a.append([a])
            made.append(a)
        return made

    gc.unfreeze()
    gc.callbacks.append(count)
    try:
        with lasting_imports():
            import lasting_imports_probe  # noqa: F401
            made = cycles()
        assert runs == []
        assert gc.isenabled()
        assert gc.get_freeze_count() >= 200_000
        gc.unfreeze()
        before = len(runs)
        with lasting_imports():
            made = cycles()
            during = len(runs) - before  # (after the block a collection takes these objects)
        assert during == 0
        assert gc.get_freeze_count() == 0
        del made
        gc.disable()
        with lasting_imports():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.callbacks.remove(count)
        gc.unfreeze()
        sys.modules.pop("lasting_imports_probe", None)


def test_integers_as_people_write_them():
    assert [read_integer(t) for t in ("1000", "1_000", "1e3", "10**3", "10^3", "1E3")] == [
        1000] * 6
    assert [read_integer(t) for t in ("1.5", "x", "", "inf", "nan", "1e", "9" * 200,
                                      "10**100000", "1e100000")] == [None] * 9
    assert read_integer("-4") == -4


def test_number_checks():
    assert integer(np.int64(3), "n") == 3 and integer(4.0, "n", 1) == 4
    # strict: an int only (numpy's too), as a count of steps in a saved state must be
    assert integer(np.int64(3), "n", strict=True) == 3 and integer(0, "n", strict=True) == 0
    for bad in (4.0, np.float64(2.0), True):
        with pytest.raises(BadArgument, match="^n: expected an integer >= 0, got "):
            integer(bad, "n", strict=True)
    for bad in (True, 2.5, math.inf, "3", None, -1):
        with pytest.raises(BadArgument, match="^n: expected an integer >= 0"):
            integer(bad, "n")
    with pytest.raises(BadArgument, match="< 10"):
        integer(10, "n", 0, 10)
    assert positive(np.float32(0.5), "x") == 0.5
    for bad in (0, -1.0, math.nan, math.inf, False, "1"):
        with pytest.raises(BadArgument, match="^x: expected a positive finite number"):
            positive(bad, "x")
    assert real(1.0, "p", 0, 1, closed_high=True) == 1.0
    with pytest.raises(BadArgument, match=r"^p: expected a finite number with 0 < p <= 1"):
        real(0, "p", 0, 1, closed_high=True)


def test_to_json():
    value = {1: (np.float64(1.5), np.array([np.inf, 2.0])), "b": [math.nan, np.int32(3)],
             "c": 1 / 3}
    assert to_json(value) == {"1": [1.5, [None, 2.0]], "b": [None, 3], "c": 1 / 3}
    assert to_json(value, digits=3)["c"] == 0.333


def test_flag_of():
    assert flag_of("problem.theta0") == "--theta0" and flag_of("x", {"x": "-x"}) == "-x"


def test_the_bottom_layer_imports_the_standard_library_only():
    code = ("import sys\nimport theory.command, theory.errors, theory.files, theory.records\n"
            "print(sorted(m for m in ('numpy', 'torch', 'scipy', 'simulations') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_no_copies_of_the_bottom_layer():
    """One argparse parser with one-line errors, one BadArgument, one JSON sanitiser, one
    provenance: the packages import them from ``theory``."""
    sources = {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8")
               for package in ("theory", "simulations", "torch_impl", "paper_figs")
               for p in (ROOT / package).rglob("*.py")}
    patterns = {r"argparse\.ArgumentParser\(|class \w+\(argparse\.ArgumentParser\)":
                "theory/command.py", r"class BadArgument\b": "theory/errors.py",
                r"def (to_json|_finite_or_none|provenance|git_revision)\(": "theory/records.py",
                r"isfinite\(\w+\) else None": None}
    for pattern, home in patterns.items():
        where = sorted(name for name, text in sources.items() if re.search(pattern, text))
        assert where == ([] if home is None else [home]), (pattern, where)
    assert not (ROOT / "simulations" / "errors.py").exists()
    assert not (ROOT / "simulations" / "files.py").exists()
