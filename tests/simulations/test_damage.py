"""Damaged, edited and planted files: checkpoints and the run store. Each is loaded correctly,
computed again, or refused in one line; never a traceback, never a wrong result, and a planted
pickle never runs. A full disk is one line and exit status 1."""

from __future__ import annotations

import io
import os
import resource
import signal
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulations.engine import results
from simulations.engine import run as engine
from simulations.engine.run import simulate
from simulations.engine.spec import Execution, RunSpec
from simulations.engine.store import RunStore
from simulations.verify import cli
from theory.errors import BadArgument

SPEC = RunSpec.from_dict({"problem": {"name": "quadratic", "dim": 2},
                          "clip": {"rule": "classic", "lam": 0.5}, "schedule": "1/(t+1)^0.6",
                          "paths": 6, "steps": 20, "seed": 4, "radii": [0.3, 1.0]})
STOP_AT = 15  #: the checkpoint of chunk 1 (rows 3..5) at step 15


def _execution(ckdir: Path, resume: bool = False) -> Execution:
    return Execution(backend="torch", chunk_size=3, checkpoint_dir=ckdir, checkpoint_every=5,
                     resume=resume, progress=False)


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """(the bytes of a checkpoint in the second chunk, the uninterrupted run's arrays)."""
    whole = simulate(SPEC, Execution(backend="torch", chunk_size=3, progress=False))
    ckdir = tmp_path_factory.mktemp("ck")
    original = engine._atomic_save

    def stop(obj, path):
        original(obj, path)
        if obj["partial"] is not None and obj["partial"]["t"] == STOP_AT and obj["done"]:
            raise Stop

    engine._atomic_save = stop
    try:
        with pytest.raises(Stop):
            simulate(SPEC, _execution(ckdir))
    finally:
        engine._atomic_save = original
    return (ckdir / "state.pt").read_bytes(), whole.arrays


def _resume(ckdir: Path, data: bytes):
    """Resume from ``data`` written as the checkpoint: the arrays, or the refusal's message."""
    ckdir.mkdir(parents=True, exist_ok=True)
    (ckdir / "state.pt").write_bytes(data)
    try:
        return simulate(SPEC, _execution(ckdir, resume=True)).arrays
    except BadArgument as error:
        assert error.param == "resume" and "\n" not in str(error)
        return str(error)


def _same(got: dict, want: dict) -> bool:
    return got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want)


def _edited(data: bytes, edit) -> bytes:
    """The checkpoint ``data`` with ``edit(state)`` applied, saved again by plain torch.save
    (as a person or another program would, without the engine's digest)."""
    state = torch.load(io.BytesIO(data), weights_only=True)
    edit(state)
    out = io.BytesIO()
    torch.save(state, out)
    return out.getvalue()


def _spans(data: bytes) -> list[tuple[int, int]]:
    """The whole of ``data`` and, when it is a zip (a checkpoint, ``arrays.npz``), the bytes
    of each of its members (where the numbers are: offsets drawn over the whole file fall
    mostly on headers and padding)."""
    spans = [(0, len(data))]
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
                if info.compress_size:
                    spans.append((start, start + info.compress_size))
    except zipfile.BadZipFile:
        pass
    return spans


def _damaged(data: st.DataObject, original: bytes) -> bytes:
    """``original`` truncated at a random offset, or with 1 to 4 random bytes flipped."""
    damaged = bytearray(original)
    if data.draw(st.booleans(), "truncate"):
        return bytes(damaged[: data.draw(st.integers(0, len(original) - 1), "offset")])
    spans = _spans(original)
    for _ in range(data.draw(st.integers(1, 4), "flips")):
        start, end = data.draw(st.sampled_from(spans), "span")
        damaged[data.draw(st.integers(start, end - 1), "at")] ^= data.draw(
            st.integers(1, 255), "mask")
    return bytes(damaged)


def test_an_intact_checkpoint_resumes_bit_identically(checkpoint, tmp_path):
    data, whole = checkpoint
    assert _same(_resume(tmp_path / "ck", data), whole)


class Planted:
    """A pickle that, unpickled, creates the file ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _nan(state):
    state["partial"]["theta"][:] = float("nan")


def _shape(state):
    state["partial"]["theta"] = state["partial"]["theta"][:, :1].clone()


def _rows(state):
    state["done"][0]["endpoints"] = state["done"][0]["endpoints"][:2].clone()


@pytest.mark.parametrize("damage", ["truncated", "nan", "wrong-shape", "missing-rows",
                                    "planted", "planted-inside", "empty"])
def test_a_damaged_or_planted_checkpoint_is_refused_in_one_line(checkpoint, tmp_path, damage):
    data, _ = checkpoint
    marker = tmp_path / "marker"
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage in ("nan", "wrong-shape", "missing-rows"):
        data = _edited(data, {"nan": _nan, "wrong-shape": _shape, "missing-rows": _rows}[damage])
    elif damage == "planted":
        out = io.BytesIO()
        torch.save(Planted(marker), out)
        data = out.getvalue()
    elif damage == "planted-inside":
        def plant(state):
            state["partial"]["observers"]["x"] = Planted(marker)

        state = torch.load(io.BytesIO(data), weights_only=True)
        plant(state)
        out = io.BytesIO()
        torch.save(state, out)
        data = out.getvalue()
    else:
        data = b""
    got = _resume(tmp_path / "ck", data)
    assert isinstance(got, str) and "the checkpoint" in got and "damaged" in got, got
    assert not marker.exists()  # the planted pickle never ran


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_randomly_damaged_checkpoints_resume_exactly_or_are_refused(checkpoint, data):
    original, whole = checkpoint
    damaged = _damaged(data, original)
    with tempfile.TemporaryDirectory() as folder:
        got = _resume(Path(folder) / "ck", damaged)
    assert isinstance(got, str) or _same(got, whole)  # refused in one line, or exact


# ---- the run store ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(the store's root, the folder of SPEC's entry, the run saved there)."""
    root = tmp_path_factory.mktemp("store") / "runs"
    store = RunStore(root)
    sim = store.run(SPEC, lambda: simulate(SPEC, Execution(backend="torch", progress=False)))
    return root, store.folder(SPEC.key()), sim


def _damage_copy(saved, tmp_path: Path, edit) -> tuple[Path, Path]:
    """A copy of the store with ``edit(entry_folder)`` applied: (root, entry folder)."""
    root, folder, _ = saved
    copy = tmp_path / "runs"
    (copy / folder.name).mkdir(parents=True)
    for name in (results.ARRAYS, results.RESULT):
        (copy / folder.name / name).write_bytes((folder / name).read_bytes())
    edit(copy / folder.name)
    return copy, copy / folder.name


def _rewrite_npz(folder: Path, change) -> None:
    with np.load(folder / results.ARRAYS) as npz:
        arrays = {k: npz[k] for k in npz.files}
    change(arrays)
    np.savez(folder / results.ARRAYS, **arrays)


STORE_DAMAGE = {
    "nan": lambda f: _rewrite_npz(f, lambda a: a["max_norm"].__setitem__(slice(None), np.nan)),
    "wrong-shape": lambda f: _rewrite_npz(f, lambda a: a.__setitem__(
        "endpoints", a["endpoints"][:2])),
    "dropped-array": lambda f: _rewrite_npz(f, lambda a: a.pop("clipped_steps")),
    "truncated": lambda f: (f / results.ARRAYS).write_bytes(
        (f / results.ARRAYS).read_bytes()[:300]),
}


@pytest.mark.parametrize("damage", sorted(STORE_DAMAGE))
def test_a_damaged_store_entry_is_computed_again(saved, tmp_path, damage, capsys):
    arrays = saved[2].arrays
    copy, _ = _damage_copy(saved, tmp_path, STORE_DAMAGE[damage])
    calls = []

    def compute():
        calls.append(1)
        return simulate(SPEC, Execution(backend="torch", progress=False))

    sim = RunStore(copy).run(SPEC, compute)
    assert calls == [1] and _same(sim.arrays, arrays)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "computing it again" in err[0], err
    assert _same(RunStore(copy).load(SPEC).arrays, arrays)  # saved again, intact


@pytest.mark.parametrize("damage", sorted(STORE_DAMAGE))
def test_a_read_only_store_refuses_a_damaged_entry_in_one_line(saved, tmp_path, damage):
    copy, _ = _damage_copy(saved, tmp_path, STORE_DAMAGE[damage])
    with pytest.raises(FileNotFoundError) as refused:
        RunStore(copy, read_only=True).run(SPEC, lambda: pytest.fail("computed"))
    assert "\n" not in str(refused.value) and "--from" in str(refused.value)


def test_resume_recomputes_a_nan_edited_run(tmp_path, capsys):
    args = ["run", "--problem", "quadratic", "--lam", "1", "--schedule", "1/(t+1)",
            "--paths", "5", "--steps", "5", "--quiet", "--backend", "torch", "--radius", "0.5",
            "--out", str(tmp_path)]
    assert cli.main(args) == 0
    (folder,) = (tmp_path / "runs").glob("????????????????")
    before = results.load(folder).arrays
    STORE_DAMAGE["nan"](folder)
    capsys.readouterr()
    assert cli.main([*args, "--resume"]) == 0
    err = capsys.readouterr().err
    assert "reusing" not in err and "SHA-256" in err and "Traceback" not in err
    assert _same(results.load(folder).arrays, before)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_randomly_damaged_store_entries_load_exactly_or_are_refused(saved, data):
    _, folder, want = saved
    name = data.draw(st.sampled_from([results.ARRAYS, results.RESULT]), "file")
    damaged = _damaged(data, (folder / name).read_bytes())
    with tempfile.TemporaryDirectory() as tmp:
        copy, entry = _damage_copy(saved, Path(tmp), lambda f: (f / name).write_bytes(damaged))
        try:
            sim = RunStore(copy, read_only=True).load(SPEC)
        except FileNotFoundError as refused:
            assert "\n" not in str(refused)
            return
    # read back: only an intact entry (the damage hit nothing that is read, e.g. a space)
    assert _same(sim.arrays, want.arrays) and sim.setting == want.setting and sim.run == want.run


# ---- a full disk -------------------------------------------------------------------------------

def _limited(limit: int):
    """A child process whose files cannot grow past ``limit`` bytes (writes fail with EFBIG,
    as on a full disk)."""
    def setup():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return setup


def test_a_full_disk_while_checkpointing_is_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "simulations", "run", "--problem", "quadratic", "--dim", "3",
         "--lam", "1", "--schedule", "1/(t+1)", "--paths", "300", "--steps", "20",
         "--checkpoint-every", "5", "--backend", "torch", "--quiet", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, preexec_fn=_limited(4096),
        cwd=Path(__file__).resolve().parents[2], env={**os.environ, "PYTHONWARNINGS": "ignore"})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert "cannot write into" in lines[0] and "Traceback" not in done.stderr
    assert not list((tmp_path / "checkpoints").rglob(".state.pt.*"))  # no temporary left
