"""docs/: every local link and image named in the docs and the README exists, every claim has
its section in docs/claims.md, and every figure module is in the gallery."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md", ROOT / "CONTRIBUTING.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def local_links(page: Path) -> list[str]:
    """The targets of the page's Markdown links and images that are not web addresses, without
    their #anchor."""
    targets = [t.split("#")[0] for t in LINK.findall(page.read_text(encoding="utf-8"))]
    return [t for t in targets if t and not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_local_link_and_image_exists(page):
    missing = [t for t in local_links(page) if not (page.parent / t).exists()]
    assert not missing, f"{page.name} links to missing files: {missing}"


def test_the_pages_link_each_other():
    assert "docs/README.md" in local_links(ROOT / "README.md")
    index = set(local_links(ROOT / "docs" / "README.md"))
    assert {"claims.md", "verdicts.md", "writing-claims.md", "gallery.md"} <= index


def test_every_claim_has_a_section():
    from simulations.verify.claims import CLAIMS

    headings = re.findall(r"^###? (\S+)", (ROOT / "docs" / "claims.md").read_text("utf-8"),
                          flags=re.M)
    assert set(CLAIMS) - {"A1", "A2", "A3"} <= set(headings)
    text = (ROOT / "docs" / "claims.md").read_text("utf-8")
    assert all(f"**({a})**" in text for a in ("A1", "A2", "A3"))


def test_every_figure_is_in_the_gallery():
    from paper_figs.__main__ import FIGURES, SCENARIO_ONLY

    gallery = (ROOT / "docs" / "gallery.md").read_text("utf-8")
    for name in (*FIGURES, *SCENARIO_ONLY):
        assert f"paper_figs/{name}.py" in gallery, name
    images = [t for t in local_links(ROOT / "docs" / "gallery.md") if t.endswith(".png")]
    assert len(images) >= len(FIGURES) + len(SCENARIO_ONLY)


CODE = re.compile(r"`([A-Za-z_][\w./-]*)`")


def named_code(page: Path) -> tuple[set[str], set[str]]:
    """The module paths (``simulations.x.y``) and the files or folders (``a/b.py``) of this
    toolkit named in backticks on ``page``."""
    names = set(CODE.findall(page.read_text(encoding="utf-8")))
    roots = ("simulations", "theory", "paper_figs", "torch_impl")
    modules = {n for n in names if "/" not in n and n.split(".")[0] in roots and "." in n}
    files = {n for n in names if "/" in n and n.split("/")[0] in (*roots, "examples", "tests",
                                                                  "docs", "benchmarks")}
    return modules, files


@pytest.mark.parametrize("page", sorted((ROOT / "docs").glob("*.md")), ids=lambda p: p.name)
def test_every_module_and_file_the_docs_name_exists(page):
    import importlib

    modules, files = named_code(page)
    for name in sorted(modules):
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
            break
        else:
            raise AssertionError(f"{page.name}: {name} is not importable")
    missing = sorted(f for f in files if not (ROOT / f.rstrip("/")).exists())
    assert not missing, f"{page.name} names missing files: {missing}"
