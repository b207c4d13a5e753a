"""``python -m simulations``: see :mod:`simulations.verify.cli`."""

from simulations.verify.cli import main
from theory import command

if __name__ == "__main__":
    command.exit(main())
