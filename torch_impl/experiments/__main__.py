"""``python -m torch_impl.experiments NAME [options]``: run one reproduction."""

from __future__ import annotations

import importlib
import sys

from torch_impl.experiments import EXPERIMENTS

USAGE = f"usage: python -m torch_impl.experiments {{{'|'.join(EXPERIMENTS)}}} [--quick] [--out DIR]"


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``NAME`` to ``torch_impl.experiments.NAME.main(rest)``; 2 on bad usage."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not argv else sys.stdout)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in EXPERIMENTS:
        print(f"error: unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}",
              file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(f"torch_impl.experiments.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"torch_impl.experiments.{name}":
            raise
        print(f"error: experiment {name!r} is not implemented yet "
              f"(no module torch_impl/experiments/{name}.py)", file=sys.stderr)
        return 2
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
