"""``python -m simulations``: see :mod:`simulations.cli`."""

from simulations.cli import main
from theory import command

if __name__ == "__main__":
    command.exit(main())
