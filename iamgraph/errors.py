"""The error base of iamgraph. Every error carries its own user-facing message; only the CLI exits."""

from __future__ import annotations


class IamGraphError(Exception):
    """Base of every error iamgraph raises on purpose. ``str(err)`` is the user-facing message."""


class InputError(IamGraphError):
    """Input that cannot be used: malformed JSON, wrong types, a missing file.

    ``source`` names the file (or ``<stdin>``, ``<request>``), ``location`` the place inside it
    (``Statement[2].Condition``), so the message says exactly where to look.
    """

    def __init__(self, message: str, *, source: str | None = None, location: str | None = None) -> None:
        self.message = message
        self.source = source
        self.location = location
        where = ": ".join(p for p in (source, location) if p)
        super().__init__(f"{where}: {message}" if where else message)


class PolicyParseError(InputError):
    """A policy document that does not follow the IAM policy grammar."""


class ArnError(InputError):
    """A string that is not a valid ARN where an ARN is required."""


class SnapshotError(IamGraphError):
    """A snapshot file that cannot be read or written."""


class SnapshotVersionError(SnapshotError):
    """A snapshot written by a newer, incompatible iamgraph."""


class NotFoundError(IamGraphError):
    """An ARN, account or principal that the snapshot does not hold."""
