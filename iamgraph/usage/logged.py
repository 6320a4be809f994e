"""What the ingested CloudTrail logged, per account and region, and which trails delivered it.

A trail logs management events, data events of the resource types its event selectors name, both, or neither; a
single-Region trail logs one Region, and each account may have its own trails besides the organization's
(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/logging-management-events-with-cloudtrail.html,
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/logging-data-events-with-cloudtrail.html). So "no event
shows this action" is evidence of non-use only where the kind of event the action produces was logged.

What was logged is read from what was ingested (the store's ``logged`` table, filled at ingest from each event's
``recipientAccountId`` and ``awsRegion``):

- **management events** were logged in an account and Region when some management event of it was recorded;
- **data events of a service** (one CloudTrail resource type each: ``AWS::S3::Object``...) were logged there when
  some data event of that service was recorded there.

A trail is known by where it delivers its files: the S3 location before ``AWSLogs/``, with the organization id for
an organization trail (``AWSLogs/o-id/<account>/...``,
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/get-and-view-cloudtrail-log-files.html). A trail logs
the same kinds of events in every Region it covers (a multi-Region trail has one set of event selectors,
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/receive-cloudtrail-log-files-from-multiple-regions.html),
so what a trail is seen to log for an account in one Region it logs in the account's other Regions it delivers:
S3 data events seen in us-east-1 say that eu-west-1, delivered by the same trail, logs them too, although nobody
read an object there. Only what a trail alone delivered for an account and Region is attributed to it (records do
not name their trail, and an event two trails deliver is counted once). Regions delivered by a different trail are
judged by what that trail shows. Several single-Region trails delivering to one location look like one trail: say
what each logs in the configuration. ``Logged.summary`` lists what was inferred from the trail.

The ``evidence.logged`` section of ``iamgraph.yaml`` replaces what the store shows, per ``"<account>/<region>"``,
``"<account>"`` or ``"*"`` (the most specific key that sets a field wins)::

    evidence:
      logged:
        "*":                        {management_events: true, data_events: [s3]}
        "111122223333":             {data_events: [s3, lambda]}
        "111122223333/eu-west-1":   {data_events: []}
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from iamgraph.errors import InputError
from iamgraph.usage.observability import DATA_EVENT_ACTIONS

# The CloudTrail resource type whose data events carry each service's data-event actions (advanced event selectors'
# ``resources.type``): https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_AdvancedFieldSelector.html
DATA_RESOURCE_TYPES: dict[str, str] = {
    "s3": "AWS::S3::Object",
    "lambda": "AWS::Lambda::Function",
    "dynamodb": "AWS::DynamoDB::Table",
    "sns": "AWS::SNS::Topic",
    "sqs": "AWS::SQS::Queue",
}

_TRAIL = re.compile(
    r"^(?P<trail>.*?AWSLogs/(?:o-[a-z0-9]+/)?)(?P<account>\d{12})/CloudTrail/(?P<region>[a-z0-9-]+)/")

_MANAGEMENT = "management"
"""Management events, beside the services whose data events a trail logs."""

UNKNOWN_REGION = ""
"""The region of evidence recorded before regions were kept (an older store): the whole account."""


class LoggedConfigError(InputError):
    """The ``evidence`` section of the config file is malformed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedSetting:
    """What a configuration key says a trail logs; None leaves the field to a less specific key or the store."""

    management_events: bool | None = None
    data_events: tuple[str, ...] | None = None
    """Services (``s3``, ``lambda``...) whose data events are logged."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedOverride:
    """``(key, setting)`` pairs; a key is ``"<account>/<region>"``, ``"<account>"`` or ``"*"``."""

    settings: tuple[tuple[str, LoggedSetting], ...] = ()

    def lookup(self, account: str, region: str) -> tuple[bool | None, frozenset[str] | None]:
        """(management events, data-event services) as configured for one account and region (None: not set)."""
        by = dict(self.settings)
        management: bool | None = None
        data: frozenset[str] | None = None
        for key in (f"{account}/{region}", account, "*"):
            s = by.get(key)
            if s is None:
                continue
            if management is None and s.management_events is not None:
                management = s.management_events
            if data is None and s.data_events is not None:
                data = frozenset(s.data_events)
        return management, data

    def merged(self, more: Iterable[tuple[str, LoggedSetting]]) -> LoggedOverride:
        """This override with ``more`` added under keys it does not set already (this one wins)."""
        mine = dict(self.settings)
        extra = [(k, v) for k, v in more if k not in mine]
        return LoggedOverride(settings=tuple(sorted([*self.settings, *extra])))

    @staticmethod
    def of_data_events(by_key: Mapping[str, Iterable[str]]) -> LoggedOverride:
        """Data-event services per key (``recommend.data_events``, the older per-account form)."""
        return LoggedOverride(settings=tuple(sorted(
            (k, LoggedSetting(data_events=tuple(sorted(v)))) for k, v in by_key.items())))


_KEY = re.compile(r"^(\*|\d{12}|\d{12}/[a-z0-9-]+)$")


def parse_logged_config(data: Any, *, source: str = "iamgraph.yaml") -> LoggedOverride:
    """The ``evidence.logged`` override from a parsed config file (absent: none)."""
    if not isinstance(data, Mapping):
        return LoggedOverride()
    section = data.get("evidence")
    if section is None:
        return LoggedOverride()
    if not isinstance(section, Mapping):
        raise LoggedConfigError("evidence must be a mapping", source=source, location="evidence")
    unknown = sorted(set(section) - {"logged"})
    if unknown:
        raise LoggedConfigError(f"unknown setting(s) {', '.join(map(str, unknown))}", source=source,
                                location="evidence")
    logged = section.get("logged") or {}
    if not isinstance(logged, Mapping):
        raise LoggedConfigError('evidence.logged must map "<account>/<region>", "<account>" or "*" to settings',
                                source=source, location="evidence.logged")
    out: list[tuple[str, LoggedSetting]] = []
    services = set(DATA_EVENT_ACTIONS)
    for raw_key, value in logged.items():
        key = str(raw_key)
        where = f"evidence.logged.{key}"
        if not _KEY.match(key):
            raise LoggedConfigError(f'{key!r} is not "<account>/<region>", "<account>" (12 digits) or "*"',
                                    source=source, location=where)
        if not isinstance(value, Mapping) or set(value) - {"management_events", "data_events"}:
            raise LoggedConfigError("expected a mapping with management_events and/or data_events", source=source,
                                    location=where)
        mgmt = value.get("management_events")
        if mgmt is not None and not isinstance(mgmt, bool):
            raise LoggedConfigError("management_events must be true or false", source=source,
                                    location=f"{where}.management_events")
        de = value.get("data_events")
        if de is not None:
            if not isinstance(de, list) or not all(isinstance(s, str) for s in de):
                raise LoggedConfigError("data_events must be a list of services", source=source,
                                        location=f"{where}.data_events")
            bad = sorted(set(de) - services)
            if bad:
                raise LoggedConfigError(f"no data events known for {', '.join(bad)} (known: "
                                        f"{', '.join(sorted(services))})", source=source,
                                        location=f"{where}.data_events")
        out.append((key, LoggedSetting(management_events=mgmt,
                                       data_events=tuple(sorted(set(de))) if de is not None else None)))
    return LoggedOverride(settings=tuple(sorted(out)))


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceLog:
    """What was logged in one account and region (after the override), and by which trails."""

    account: str
    region: str
    """``""``: unknown (evidence from an older store, for the whole account)."""
    management_events: bool
    data_events: tuple[str, ...]
    """Services whose data events were logged."""
    data_resource_types: tuple[str, ...]
    trails: tuple[str, ...]
    """Where the ingested files of this account and region came from (the location up to ``AWSLogs/[o-id/]``)."""
    from_trail: tuple[str, ...]
    """What no event of this region showed but its trail was seen to log for the account in another region
    (``management`` and services)."""
    configured: bool
    """The configuration set at least one field."""


def trail_of(path: str) -> tuple[str, str, str] | None:
    """(delivery location, account, region) of a CloudTrail log file's path, or None for another layout."""
    m = _TRAIL.match(path.replace("\\", "/"))
    return (m["trail"], m["account"], m["region"]) if m else None


class Logged:
    """What the store's evidence shows was logged, per account and region, with the override applied."""

    def __init__(self, rows: Iterable[tuple[str, str, str, str]], files: Iterable[str],
                 override: LoggedOverride | None = None) -> None:
        """``rows``: (account, region, service, category ``management``/``data``) seen; ``files``: ingested paths."""
        self.override = override or LoggedOverride()
        self._mgmt: set[tuple[str, str]] = set()
        self._data: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._regions: dict[str, set[str]] = defaultdict(set)
        for account, region, service, category in rows:
            self._regions[account].add(region)
            if category == "data":
                self._data[(account, region)].add(service)
            else:
                self._mgmt.add((account, region))
        self._trails: dict[tuple[str, str], set[str]] = defaultdict(set)
        for path in files:
            hit = trail_of(path)
            if hit is not None:
                self._trails[(hit[1], hit[2])].add(hit[0])
                self._regions[hit[1]].add(hit[2])
        # What each trail alone delivered for an account: it logs that in every region it delivers for the account.
        self._by_trail: dict[tuple[str, str], set[str]] = defaultdict(set)
        for (account, region), trails in self._trails.items():
            if len(trails) == 1:
                (trail,) = trails
                seen = self._data.get((account, region), set())
                self._by_trail[(trail, account)] |= seen | ({_MANAGEMENT} if (account, region) in self._mgmt else set())
        self._memo: dict[tuple[str, str], tuple[bool, frozenset[str], frozenset[str]]] = {}

    def regions(self, account: str) -> frozenset[str]:
        """Regions of the account the evidence reaches: some event was recorded or some file delivered there
        (``{""}`` for an older store's evidence)."""
        return frozenset(self._regions.get(account, ()))

    def at(self, account: str, region: str) -> tuple[bool, frozenset[str]]:
        """(management events logged, data-event services logged) in one account and region."""
        mgmt, data, _ = self._at(account, region)
        return mgmt, data

    def _at(self, account: str, region: str) -> tuple[bool, frozenset[str], frozenset[str]]:
        key = (account, region)
        hit = self._memo.get(key)
        if hit is None:
            seen = set(self._data.get(key, ())) | ({_MANAGEMENT} if key in self._mgmt else set())
            by_trail = set().union(*(self._by_trail.get((t, account), set()) for t in self._trails.get(key, ())))
            inferred = by_trail - seen
            found = seen | by_trail
            cfg_m, cfg_d = self.override.lookup(account, region)
            hit = self._memo[key] = (
                cfg_m if cfg_m is not None else _MANAGEMENT in found,
                frozenset(cfg_d) if cfg_d is not None else frozenset(found - {_MANAGEMENT}),
                frozenset(inferred),
            )
        return hit

    def places(self, accounts: Iterable[str]) -> list[tuple[str, str]]:
        """Every (account, region) of ``accounts`` the evidence reaches. An account with none is one place of
        unknown region, where only the configuration can say what was logged."""
        out: list[tuple[str, str]] = []
        for a in sorted(set(accounts)):
            regions = self._regions.get(a)
            if not regions or UNKNOWN_REGION in regions:
                # An older store's evidence of the account has no region: the account is one place.
                out.append((a, UNKNOWN_REGION))
            else:
                out.extend((a, r) for r in sorted(regions))
        return out

    def summary(self) -> tuple[PlaceLog, ...]:
        keys = sorted((a, r) for a, rs in self._regions.items() for r in rs)
        out = []
        for account, region in keys:
            mgmt, data, inferred = self._at(account, region)
            cfg_m, cfg_d = self.override.lookup(account, region)
            out.append(PlaceLog(account=account, region=region, management_events=mgmt,
                                data_events=tuple(sorted(data)),
                                data_resource_types=tuple(DATA_RESOURCE_TYPES.get(s, s) for s in sorted(data)),
                                trails=tuple(sorted(self._trails.get((account, region), ()))),
                                from_trail=tuple(sorted(inferred)),
                                configured=cfg_m is not None or cfg_d is not None))
        return tuple(out)
