"""``python -m torch_impl.experiments NAME [options]``: run one reproduction."""

from __future__ import annotations

import importlib
import sys

from torch_impl.experiments import ALIASES, EXPERIMENTS

USAGE = (f"usage: python -m torch_impl.experiments {{{'|'.join(EXPERIMENTS)}}} "
         f"[--quick] [--out DIR]\n(aliases: "
         + ", ".join(f"{seed} = {name}" for seed, name in ALIASES.items()) + ")")


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``NAME`` (or its seed alias) to ``torch_impl.experiments.NAME.main(rest)``;
    2 on bad usage."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not argv else sys.stdout)
        return 0 if argv else 2
    name, rest = ALIASES.get(argv[0], argv[0]), argv[1:]
    if name not in EXPERIMENTS:
        print(f"error: unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)} "
              f"(or {', '.join(ALIASES)})", file=sys.stderr)
        return 2
    module = importlib.import_module(f"torch_impl.experiments.{name}")
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
