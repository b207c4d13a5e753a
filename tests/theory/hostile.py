"""Hostile formulas a user can type or share, and a runner that tries each in a child process
with a deadline, so that a case that hangs (a C-level power holding the GIL) is reported as a
hang instead of stopping the test session. Nothing of the toolkit is imported here: the child
imports it from the repository root it is given (the census of issue 18 runs the same cases
against an older checkout)."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARK = "MARK"  # replaced by a path that must not exist afterwards (code would have run)
CODE = [f"__import__('os').system('touch {MARK}')", f"open('{MARK}', 'w')",
        f"(lambda: open('{MARK}', 'w'))()", "x.__class__", "t.__class__.__mro__",
        f"eval(\"open('{MARK}', 'w')\")", "Symbol('y')"]

#: (surface, text, expected): expected "refused" (one line) or "answered" (a result).
CASES = [
    *[("schedule", text, "refused") for text in [
        "((9**9999)**9999)**9999", "exp(exp(exp(exp(100))))", "(t+2)^(t+2)^(t+2)", "9**9**9",
        "2**-10000000+t", "1e999999999", "exp(1,2)+t", "log(0)+t", "1/0+t",
        "10**(t*0+10**9)", "(9**999)**999/(t+1)", *CODE]],
    ("schedule", "sin(10**100*t)+2", "answered"),
    *[("bound", text, "refused") for text in [
        "9**9**9*exp(-M)", "2**-10000000", "((9**999)**999)**999", "1e400", "Max(M,1e999)",
        "exp(1,2)", "log(0)", "1/0", "log(M-M)", "sqrt(-1)*M", "exp(exp(M))", "Min()", *CODE]],
    *[("activation", text, "refused") for text in [
        "9**9**9*x", "exp(exp(exp(exp(100))))*x", "x**(10**10)", *CODE]],
    *[("horizon", text, "refused") for text in [
        "10**100000000", "1e100000000", "9**999", "10**25", "1e30"]],
    ("steps", "1e100000000", "refused"),
]

_CHILD = r"""
import contextlib, io, json, os, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import theory.__main__, theory.assumptions  # warm
import simulations.verify.cli, simulations.verify.scenarios  # warm
TOML = ('name = "h"\nclaims = ["L1-det"]\n[problem]\nname = "quadratic"\n[clip]\n'
        'rule = "classic"\nlam = 1.0\n[run]\nschedule = "1/(t+1)"\npaths = 4\nsteps = 3\n'
        '[[bound]]\nname = "hostile-{n}"\nevent = "exit"\nradius = [1.0]\nexpression = ')

def attempt(surface, text, folder):
    if surface == "schedule":
        from theory.schedules import parse_schedule
        schedule = parse_schedule(text)
        return f"{schedule.partial_sum(1000)} {schedule.a2().holds}"
    if surface == "activation":
        from theory.assumptions import a1
        return str(a1(text).holds)
    if surface == "bound":
        from simulations.verify.scenarios import load_scenario
        path = Path(folder) / "hostile.toml"
        path.write_text(TOML.replace("{n}", os.path.basename(folder)) + json.dumps(text)
                        + "\n", encoding="utf-8")
        return str(load_scenario(path).claims)
    if surface == "horizon":
        from theory.__main__ import main
        return str(main(["bound", "--lam", "30", "--radius", "1024", "--schedule",
                         "1/(t+1)", "--horizon", text, "--json"]))
    from simulations.verify.cli import main
    return str(main(["run", "--problem", "quadratic", "--clip", "classic", "--lam", "1",
                     "--schedule", "1", "--steps", text, "--quiet", "--out", folder]))

with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
    for warm in [("bound", "exp(-M)"), ("schedule", "1/(t+1)"), ("activation", "tanh")]:
        attempt(*warm, tempfile.mkdtemp())  # imports and registries: not the case's time

for line in sys.stdin:
    surface, text = json.loads(line)
    folder = tempfile.mkdtemp()
    mark = os.path.join(folder, "ran")
    text = text.replace("MARK", mark)
    err, start = io.StringIO(), time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            outcome, message = "answered", attempt(surface, text, folder)
            if surface in ("horizon", "steps") and message != "0":  # a command's status
                lines = err.getvalue().strip().splitlines()
                outcome = "refused" if message == "2" and len(lines) == 1 else "traceback"
                message = " | ".join(lines)
        except SystemExit as stop:
            lines = err.getvalue().strip().splitlines()
            outcome = "refused" if stop.code == 2 and len(lines) == 1 else "traceback"
            message = " | ".join(lines)
        except ValueError as error:
            message = str(error)
            outcome = "refused" if "\n" not in message else "traceback"
        except BaseException as error:
            outcome, message = "traceback", f"{type(error).__name__}: {error}"
    if os.path.exists(mark):
        outcome = "ran code"
    print(json.dumps({"outcome": outcome, "message": message[:1000],
                      "seconds": time.perf_counter() - start}), flush=True)
"""


def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)


def run_cases(cases: list[tuple[str, str]], root: Path = ROOT, limit: float = 60.0,
              ) -> list[dict]:
    """Each (surface, text) tried in a child process importing the toolkit from ``root``:
    a dict with ``outcome`` (answered, refused, traceback, ran code, hang), ``message`` and
    ``seconds`` (measured in the child, imports excluded). A case with no answer within
    ``limit`` seconds (imports included) is a hang; the child is killed and a new one goes on
    with the next case."""
    results: list[dict] = []
    while len(results) < len(cases):
        child = subprocess.Popen([sys.executable, "-c", _CHILD, str(root)], text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, cwd=root)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_pump, args=(child.stdout, lines), daemon=True).start()
        for case in cases[len(results):]:
            child.stdin.write(json.dumps(case) + "\n")
        child.stdin.close()
        while len(results) < len(cases):
            try:
                results.append(json.loads(lines.get(timeout=limit)))
            except queue.Empty:
                results.append({"outcome": "hang", "message": "", "seconds": limit})
                break
            except json.JSONDecodeError:
                results.append({"outcome": "traceback", "message": "", "seconds": 0.0})
        child.kill()
        child.wait()
    return results


if __name__ == "__main__":  # the census: python tests/theory/hostile.py [ROOT]
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT
    found = run_cases([(s, t) for s, t, _ in CASES], root, limit=30.0)
    for (surface, text, expected), result in zip(CASES, found, strict=True):
        print(f"{surface:10} {expected:8} {result['outcome']:9} {result['seconds']:6.2f} "
              f"{text[:40]!r} {result['message'][:90]}")
