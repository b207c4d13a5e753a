r"""Item 8: the verification table and the three seed-reproduction tables, in ``OUT/tables``.

* The verification table comes from ``python -m simulations verify --out OUT/tables/verify
  --resume`` (the paper suite at its quick sizes in a quick run, with ``--full`` otherwise; its
  runs are kept in ``OUT/tables/verify/runs`` and reused), which writes ``report.md``,
  ``report.json`` and ``report.tex``; they are copied to ``OUT/tables``, its printed table to
  ``OUT/tables/verify.log``. With ``--from DIR`` they are copied from
  ``DIR/tables`` (or ``DIR``) instead. Where the command does not exist in this checkout the step
  is skipped with a message.
* The seed tables ``torch_impl/experiments/results/seed000.md``, ``seed001.md`` and
  ``seed003.md`` (the full runs of ``python -m torch_impl.experiments norm_vs_value``,
  ``ema_vs_fixed`` and ``hyperopt_stacks``) are copied where they exist; the missing ones are
  named.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from simulations.engine.progress import mode
from torch_impl.experiments import EXPERIMENTS
from torch_impl.experiments.common import DEFAULT_OUT

__all__ = ["REPORTS", "SEED_TABLES", "TableStatus", "make", "verify_available"]

REPORTS = ("report.md", "report.json", "report.tex")
SEED_TABLES = tuple(f"{stem}.md" for stem in EXPERIMENTS.values())
ROOT = Path(__file__).resolve().parent.parent
SEED_DIR = DEFAULT_OUT
VERIFY_TIMEOUT = 25 * 60  #: seconds allowed to ``simulations verify``


@dataclass
class TableStatus:
    """What item 8 produced: the files ``written`` and a line per thing ``missing``."""

    written: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def verify_available() -> bool:
    """Whether ``python -m simulations`` has a ``verify`` command (read from its parser)."""
    from simulations.verify.cli import build_parser

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            build_parser().parse_args(["verify", "--help"])
        except SystemExit as done:
            return done.code == 0
    return True


def _copy(names: tuple[str, ...], source: Path, target: Path, status: TableStatus,
          what: str) -> None:
    for name in names:
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)
            status.written.append(target / name)
        else:
            status.missing.append(f"{what} {name}: not found in {source}")


def verification_table(out: Path, quick: bool, source: Path | None, status: TableStatus) -> None:
    """Copy the report from ``source``, or run ``simulations verify`` into ``out/verify``."""
    if source is not None:
        folder = source / "tables" if (source / "tables" / REPORTS[0]).exists() else source
        _copy(REPORTS, folder, out, status, "verification table")
        return
    if not verify_available():
        status.missing.append("verification table: `python -m simulations verify` is not "
                              "available in this checkout; skipped")
        return
    command = [sys.executable, "-m", "simulations", "verify", "--out", str(out / "verify"),
               "--resume", *([] if quick else ["--full"])]
    terminal = sys.stderr.isatty()
    log = out / "verify.log"
    quiet = mode() == "off"
    with open(log, "w", encoding="utf-8") as handle:
        # its progress (a bar on a terminal, lines elsewhere) on stderr unless --quiet
        done = subprocess.run(command + (["--quiet"] if quiet else []), cwd=ROOT,
                              stdout=handle, stderr=handle if quiet and not terminal else None,
                              text=True, timeout=VERIFY_TIMEOUT)
    if done.returncode != 0:
        last = (log.read_text(encoding="utf-8").strip().splitlines() or ["(no message)"])[-1]
        status.missing.append(f"verification table: `{' '.join(command[1:])}` failed with "
                              f"status {done.returncode}: {last}")
        return
    status.written.append(log)
    _copy(REPORTS, out / "verify", out, status, "verification table")


def make(out: Path, quick: bool, source: Path | None = None) -> TableStatus:
    """Gather every table of item 8 into ``out`` (see the module docstring); ``out`` and
    ``source`` are relative to the current folder (``simulations verify`` runs from the
    checkout, so it is given them absolute)."""
    out = Path(out).absolute()
    source = None if source is None else Path(source).absolute()
    out.mkdir(parents=True, exist_ok=True)
    status = TableStatus()
    verification_table(out, quick, source, status)
    _copy(SEED_TABLES, SEED_DIR, out, status, "seed table")
    return status
