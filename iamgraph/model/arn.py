"""ARNs: ``arn:partition:service:region:account-id:resource``.

Format: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html
The resource part may itself contain colons (``arn:aws:logs:...:log-group:name:*``), so only the
first five separators split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from iamgraph.errors import ArnError

_ACCOUNT = re.compile(r"^\d{12}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str

    @classmethod
    def parse(cls, text: str, *, source: str | None = None) -> Arn:
        if not isinstance(text, str):
            raise ArnError(f"an ARN must be a string, not {type(text).__name__}", source=source)
        parts = arn_parts(text)
        if parts is None:
            raise ArnError(
                f"{text!r} is not an ARN (expected arn:partition:service:region:account:resource)",
                source=source,
            )
        return cls(partition=parts[1], service=parts[2], region=parts[3], account=parts[4], resource=parts[5])

    @property
    def resource_type(self) -> str:
        """The part before the first ``/`` or ``:`` of the resource (``role``, ``user``, ``key``), or ''."""
        m = re.match(r"^([^/:]*)[/:]", self.resource)
        return m.group(1) if m else ""

    @property
    def resource_name(self) -> str:
        """The last path segment of the resource (``role/path/Name`` -> ``Name``)."""
        return re.split(r"[/:]", self.resource)[-1]

    def __str__(self) -> str:
        return f"arn:{self.partition}:{self.service}:{self.region}:{self.account}:{self.resource}"


def arn_parts(text: str) -> list[str] | None:
    """``[arn, partition, service, region, account, resource]``, or None when ``text`` is no ARN (the check
    ``Arn.parse`` makes, without building an ``Arn``: the engine splits one per request)."""
    parts = text.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[1] or not parts[2]:
        return None
    return parts


def is_account_id(value: str) -> bool:
    # Twelve ASCII digits match the pattern; anything else is left to it (it also takes other Unicode digits
    # and a trailing newline, which callers have always got). The engine asks this several times a request.
    if len(value) == 12 and value.isascii() and value.isdigit():
        return True
    return bool(_ACCOUNT.match(value))


def try_parse(text: str) -> Arn | None:
    try:
        return Arn.parse(text)
    except ArnError:
        return None


def account_of(arn: str) -> str | None:
    """The account of an ARN, or None when it has none (S3 buckets, AWS managed policies say ``aws``)."""
    parts = arn_parts(arn) if isinstance(arn, str) else None
    if parts is None or not is_account_id(parts[4]):
        return None
    return parts[4]
