"""The one exception of bad input: :class:`BadArgument`, a ``ValueError`` that names its
parameter, so that a command line can name the flag (and a scenario file the key) without
reading the message."""

from __future__ import annotations

__all__ = ["BadArgument"]


class BadArgument(ValueError):
    """Bad input for parameter ``param``: ``str(error)`` is ``"param: message"``."""

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message

    def renamed(self, param: str) -> BadArgument:
        """The same error for the parameter called ``param`` where it was given."""
        return BadArgument(param, self.message)
