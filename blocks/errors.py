"""The root of every error this project raises for something a user gave or asked.

Each kind of input has its subclass beside the code that reads it (``ConfigError`` for
architectures, ``SpaceError`` for spaces, ``StudyError`` for studies, ``StorageError``,
``DataError``, ``CheckpointError``, ``InitError``); a command catches :class:`NasError`
and prints ``error: <str(err)>``, one line, never a traceback. ``field`` and ``flag`` say
what to blame when the message alone cannot (the command-line flag that set a field), so
that nothing is routed by the text of a message.
"""
from __future__ import annotations


class NasError(ValueError):
    """An input that is wrong, or a request that cannot be done; ``str()`` is one line."""

    def __init__(self, message: str = "", *, field: str | None = None, flag: str | None = None) -> None:
        super().__init__(message)
        self.field, self.flag = field, flag

    def for_flag(self, default: str) -> str:
        """The line for a command line: ``<flag>: <what is wrong>``, the flag this error
        names (its field's words dropped) or ``default``."""
        text = " ".join(str(self).split())
        if self.flag and self.field:
            text = text.removeprefix(f"{self.field}: ")
        return f"{self.flag or default}: {text}"
