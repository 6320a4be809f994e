"""Who made a call, and on which resource: the parts of attribution done on the aggregate, in Python."""

from __future__ import annotations

import functools
import json
import re

from iamgraph.catalog import ActionCatalog

# Identity Center creates roles named AWSReservedSSO_<PermissionSetName>_<16 hex digits>.
# https://docs.aws.amazon.com/singlesignon/latest/userguide/referencingpermissionsets.html
_SSO_ROLE = re.compile(r"^AWSReservedSSO_(?P<ps>.+)_[0-9a-f]{16}$")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")
_QUEUE_URL = re.compile(r"^https?://(?:sqs\.)?(?P<region>[a-z0-9-]+)\.(?:queue\.)?amazonaws\.com[^/]*/(?P<acct>\d{12})/(?P<name>[^/?]+)$")


_VARIABLE = re.compile(r"\$\{[^}]*\}")


@functools.lru_cache(maxsize=4096)
def _format_regex(fmt: str) -> re.Pattern[str]:
    """An ARN format as a regex: variables match anything but ':' before the resource part, anything in it."""
    parts = fmt.split(":", 5)
    pieces: list[str] = []
    for i, part in enumerate(parts):
        var = "[^:]*" if i < 5 and len(parts) == 6 else ".+"
        pos = 0
        for m in _VARIABLE.finditer(part):
            pieces.append(re.escape(part[pos:m.start()]))
            pieces.append(var)
            pos = m.end()
        pieces.append(re.escape(part[pos:]))
        if i < len(parts) - 1:
            pieces.append(":")
    return re.compile("".join(pieces), re.DOTALL)


def permission_set_of(role_name: str | None) -> str | None:
    """The permission set name of an ``AWSReservedSSO_`` role, else None."""
    if not role_name:
        return None
    m = _SSO_ROLE.match(role_name)
    return m.group("ps") if m else None


def _fill(fmt: str, values: dict[str, str]) -> str | None:
    out = fmt
    for ph in _PLACEHOLDER.findall(fmt):
        val = values.get(ph.lower())
        if val is None:
            return None
        out = out.replace("${" + ph + "}", val)
    return out


class ResourceResolver:
    """Turns the aggregate's resource column (or its requestParameters hint) into an ARN the action applies to."""

    def __init__(self, catalog: ActionCatalog, partition: str = "aws") -> None:
        self._cat = catalog
        self._partition = partition
        self._cache: dict[tuple[str, str | None, str | None, str | None, str | None, str | None], str | None] = {}
        self._types: dict[str, list[str]] = {}
        self._patterns: dict[str, tuple[re.Pattern[str], ...]] = {}

    @property
    def partition(self) -> str:
        return self._partition

    def _types_of(self, action: str) -> list[str]:
        types = self._types.get(action)
        if types is None:
            info = self._cat.action(action)
            refs = sorted(info.resource_types, key=lambda r: not r.required) if info is not None else []
            types = self._types[action] = [r.name for r in refs]
        return types

    def resource_types(self, action: str) -> tuple[str, ...]:
        """The action's resource type names (lower case), required ones first."""
        return tuple(n.lower() for n in self._types_of(action))

    def fits(self, action: str, arn: str) -> bool:
        """Does ``arn`` fit the ARN format of one of the action's resource types?"""
        return self._matches(action, arn)

    def _matches(self, action: str, arn: str) -> bool:
        """Does ``arn`` fit the ARN format of one of the action's resource types?

        Only the action's own formats are compiled (the catalog's whole-ARN index compiles every format of
        every service, seconds of work an ingest of a few files should not pay), once per action: an ingest asks
        this for each row of its aggregate.
        """
        patterns = self._patterns.get(action)
        if patterns is None:
            service = action.split(":", 1)[0]
            found: list[re.Pattern[str]] = []
            for name in self._types_of(action):
                rt = self._cat.resource_type(service, name)
                if rt is not None:
                    found.extend(_format_regex(fmt) for fmt in rt.arn_formats)
            patterns = self._patterns[action] = tuple(found)
        return any(p.fullmatch(arn) for p in patterns)

    def resolve(
        self,
        action: str,
        resource: str | None,
        hint_key: str | None,
        hint_value: str | None,
        region: str | None,
        account: str | None,
    ) -> str | None:
        key = (action, resource, hint_key, hint_value, region, account)
        if key in self._cache:
            return self._cache[key]
        result = self._resolve(action, resource, hint_key, hint_value, region, account)
        self._cache[key] = result
        return result

    def _resolve(
        self,
        action: str,
        resource: str | None,
        hint_key: str | None,
        hint_value: str | None,
        region: str | None,
        account: str | None,
    ) -> str | None:
        if resource and resource.startswith("arn:") and self._matches(action, resource):
            return resource
        if not hint_key or not hint_value:
            return None
        if hint_value.startswith("arn:"):
            return hint_value if self._matches(action, hint_value) else None
        if hint_key == "QueueUrl":
            m = _QUEUE_URL.match(hint_value)
            if not m:
                return None
            arn = f"arn:{self._partition}:sqs:{m['region']}:{m['acct']}:{m['name']}"
            return arn if self._matches(action, arn) else None
        # A bare name: fill the ARN format of the action's resource type whose only free placeholder is the hint.
        # Names that may carry a path (IAM's ${RoleNameWithPath}) or another form (KMS aliases) are not guessed.
        if "/" in hint_value or ":" in hint_value or (not region and not account):
            return None
        values = {"partition": self._partition, hint_key.lower(): hint_value}
        if region:
            values["region"] = region
        if account:
            values["account"] = account
        service = action.split(":", 1)[0]
        for name in self._types_of(action):
            rt = self._cat.resource_type(service, name)
            if rt is None:
                continue
            for fmt in rt.arn_formats:
                filled = _fill(fmt, values)
                if filled is not None:
                    return filled
        return None


def principal_of(user_identity: object) -> str | None:
    """The principal a CloudTrail ``userIdentity`` is attributed to: the same rule as the aggregation SQL's
    ``principal`` CASE (``sql.aggregation_sql``), for callers that read events one by one (detect).

    tests/usage/test_usage_reader.py checks the two agree on every identity type.
    """
    ui = user_identity if isinstance(user_identity, dict) else {}
    sc = ui.get("sessionContext")
    si = sc.get("sessionIssuer") if isinstance(sc, dict) else None
    issuer_arn = _text(si.get("arn")) if isinstance(si, dict) else None
    kind, arn = _text(ui.get("type")), _text(ui.get("arn"))
    if kind in ("AssumedRole", "FederatedUser"):
        return issuer_arn if issuer_arn is not None else arn
    if kind == "AWSService":
        return "service:" + (_text(ui.get("invokedBy")) or "unknown")
    if kind == "AWSAccount":
        account = _text(ui.get("accountId"))
        return None if account is None else "account:" + account
    if arn is not None:
        return arn
    principal_id = _text(ui.get("principalId"))
    return None if kind is None or principal_id is None else kind.lower() + ":" + principal_id


def _text(value: object) -> str | None:
    """A JSON value as the Athena table's VARCHAR holds it (strings as they are, others as JSON text)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))
