"""``python -m paper_figs``'s folders: relative to the current folder, an empty or unwritable
``--out`` and a damaged ``--from`` refused in one line (exit status 2), a full disk one line
(exit status 1)."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from paper_figs import tables
from paper_figs.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def _one_line(capsys, code: int, got: int, *words: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert got == code and len(err) == 1, err
    assert all(w in err[0] for w in words) and "Traceback" not in err[0], err


def test_a_relative_out_is_the_current_folders(tmp_path, monkeypatch, capsys):
    """The verification table's command runs from the checkout: it is given the folder under
    the current one, not under the checkout."""
    seen = {}

    def fake_run(command, cwd=None, **kwargs):
        seen["out"] = Path(cwd or os.getcwd()) / command[command.index("--out") + 1]
        return subprocess.CompletedProcess(command, 3)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tables.subprocess, "run", fake_run)
    monkeypatch.setattr(tables, "SEED_DIR", tmp_path / "no-seeds")
    assert main(["--quick", "--out", "rel", "--only", "tables"]) == 1
    assert seen["out"].resolve() == (tmp_path / "rel" / "tables" / "verify").resolve()
    assert (tmp_path / "rel" / "manifest.json").is_file()
    assert not (ROOT / "rel").exists()


def test_an_empty_out_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _one_line(capsys, 2, main(["--out", "", "--only", "fig_schedules"]), "--out", "empty")
    assert list(tmp_path.iterdir()) == []


def test_an_out_under_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    _one_line(capsys, 2, main(["--out", str(tmp_path / "file" / "figs"),
                               "--only", "fig_schedules"]), "--out", "cannot write")


@pytest.fixture
def read_only(tmp_path):
    """A folder no file can be written in (immutable for root, mode 555 otherwise)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(
                ["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
            pytest.skip("root, and no immutable folder here")
        yield folder
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)


def test_a_read_only_out_is_refused(read_only, capsys):
    _one_line(capsys, 2, main(["--out", str(read_only), "--only", "fig_schedules"]),
              "--out", "cannot write")


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"figures": {}}', '{"quick": "yes"}',
                                  "\udcff"])
def test_a_damaged_manifest_in_from_is_refused(tmp_path, text, capsys):
    source = tmp_path / "old"
    (source / "runs").mkdir(parents=True)
    (source / "manifest.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    for extra in ([], ["--scenario", str(tmp_path / "none.toml")]):
        _one_line(capsys, 2, main(["--from", str(source), "--out", str(tmp_path / "new"),
                                   "--only", "fig_schedules", *extra]),
                  "--from", "manifest.json", "damaged")


def test_a_full_disk_is_one_line_and_exit_1(tmp_path):
    def limited():  # files cannot grow past 2 kB: writes fail with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))

    done = subprocess.run([sys.executable, "-m", "paper_figs", "--quick", "--out",
                           str(tmp_path / "figs"), "--only", "fig_schedules"],
                          capture_output=True, text=True, timeout=300, preexec_fn=limited,
                          cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert "cannot write into" in lines[0] and "Traceback" not in done.stderr
