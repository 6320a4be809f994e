"""CloudTrail log files for the demo organization, streamed hour by hour, and the usage they add up to.

Layout and file names follow CloudTrail's S3 delivery
(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/get-and-view-cloudtrail-log-files.html):
``AWSLogs/<org-id>/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<random>.json.gz``,
each file a gzip JSON object ``{"Records": [...]}``. Record fields follow the record contents reference
(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html)
and userIdentity its own page (.../cloudtrail-event-reference-user-identity.html).

Only one hour of records is in memory at a time, so a million-event run stays small. What was emitted is
folded into ``Usage`` as it goes; access advisor and last-used fields come from it, so they agree with
the files by construction.
"""

from __future__ import annotations

import gzip
import random
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

import orjson

from iamgraph.demo.context import Planned
from iamgraph.demo.events import ACTION_LEVEL_SERVICES
from iamgraph.demo.org import World
from iamgraph.demo.world import Actor, Call, iso

_HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 10, 9, 10, 10, 10, 9, 7, 5, 4, 3, 2, 2, 1)
_RESOURCE_TYPES = {
    "object": "AWS::S3::Object", "bucket": "AWS::S3::Bucket", "function": "AWS::Lambda::Function",
    "table": "AWS::DynamoDB::Table", "key": "AWS::KMS::Key", "role": "AWS::IAM::Role",
    "secret": "AWS::SecretsManager::Secret", "queue": "AWS::SQS::Queue", "topic": "AWS::SNS::Topic",
    "trail": "AWS::CloudTrail::Trail", "instance": "AWS::EC2::Instance", "user": "AWS::IAM::User",
    "policy": "AWS::IAM::Policy",
    "stream": "AWS::Kinesis::Stream",
}
_OBJECT_KEYS = ("exports/2026/orders.parquet", "reports/daily.csv", "raw/events/part-0000.json.gz",
                "models/latest.tar.gz", "static/index.html", "AWSLogs/digest.json.gz")


@dataclass(slots=True)
class Last:
    time: str
    region: str


@dataclass(slots=True)
class Usage:
    """What the emitted records add up to, per IAM principal."""

    services: dict[tuple[str, str], Last] = field(default_factory=dict)
    """(principal ARN, service namespace) -> last attempt."""
    actions: dict[tuple[str, str], Last] = field(default_factory=dict)
    """(principal ARN, action) -> last attempt, for management events of ACTION_LEVEL_SERVICES."""
    principals: dict[str, Last] = field(default_factory=dict)
    key_last_used: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    """access key id -> (time, region, service)."""
    console_last_used: dict[str, str] = field(default_factory=dict)
    pairs: set[tuple[str, str]] = field(default_factory=set)
    identity_types: set[str] = field(default_factory=set)
    files: int = 0
    events: int = 0

    def note(self, actor: Actor, c: Call, when: str, region: str) -> None:
        self.pairs.add((c.template.source, c.template.name))
        arn = actor.principal_arn
        if arn is None:
            return
        action = c.template.action
        last = Last(when, region)
        if actor.access_key and actor.access_key.startswith("AKIA") and actor.kind == "IAMUser":
            self.key_last_used[actor.access_key] = (when, region, c.template.service or "sts")
        if c.template.key == "signin.ConsoleLogin":
            self.console_last_used[arn] = when
            return
        if action is None:
            return
        self.principals[arn] = last
        service = action.split(":", 1)[0]
        self.services[(arn, service)] = last
        if service in ACTION_LEVEL_SERVICES and not c.template.data:
            self.actions[(arn, action)] = last


@dataclass(slots=True)
class _Pair:
    actor: Actor
    call: Call
    cross: bool


def _pairs(world: World) -> list[_Pair]:
    out = []
    for a in world.actors:
        for c in a.calls:
            cross = c.recipient is not None and c.recipient != a.account_id and a.kind not in ("AWSAccount",)
            out.append(_Pair(a, c, cross))
    return out


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


class _Writer:
    def __init__(self, world: World, root: Path, rng: random.Random) -> None:
        self.world = world
        self.root = root
        self.rng = rng
        self.org_id = world.org.id
        self.usage = Usage()
        self.buffers: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.last_time: dict[tuple[str, str], datetime] = {}
        self.write = root is not None

    # ---- records

    def identity(self, a: Actor, when: datetime, *, as_account: bool = False) -> dict[str, Any]:
        acct = a.account_id
        if as_account:
            pid = f"{a.unique_id}:{a.session}" if a.session else a.unique_id
            return {"type": "AWSAccount", "principalId": pid, "accountId": acct}
        created = iso(when.replace(minute=0, second=0))
        if a.kind == "IAMUser":
            ident: dict[str, Any] = {"type": "IAMUser", "principalId": a.unique_id, "arn": a.principal_arn,
                                     "accountId": acct, "accessKeyId": a.access_key or "", "userName": a.name}
            if a.extra.get("console"):
                ident["sessionContext"] = {"sessionIssuer": {}, "webIdFederationData": {},
                                           "attributes": {"creationDate": created, "mfaAuthenticated": "true"}}
            return ident
        if a.kind in ("AssumedRole", "SSO"):
            role_arn = a.principal_arn or ""
            ctx: dict[str, Any] = {"sessionIssuer": {"type": "Role", "principalId": a.unique_id, "arn": role_arn,
                                                     "accountId": acct, "userName": a.name},
                                   "attributes": {"creationDate": created, "mfaAuthenticated": "false"}}
            if "web_identity" in a.extra:
                ctx["webIdFederationData"] = {"federatedProvider": a.extra["web_identity"], "attributes": {}}
            return {"type": "AssumedRole", "principalId": f"{a.unique_id}:{a.session}",
                    "arn": f"arn:aws:sts::{acct}:assumed-role/{a.name}/{a.session}", "accountId": acct,
                    "accessKeyId": "ASIA" + a.unique_id[4:20], "sessionContext": ctx}
        if a.kind == "FederatedUser":
            issuer = a.issuer
            assert issuer is not None
            return {"type": "FederatedUser", "principalId": f"{acct}:{a.name}",
                    "arn": f"arn:aws:sts::{acct}:federated-user/{a.name}", "accountId": acct,
                    "accessKeyId": a.access_key or "",
                    "sessionContext": {"sessionIssuer": {"type": "IAMUser", "principalId": issuer.unique_id,
                                                         "arn": issuer.principal_arn, "accountId": acct,
                                                         "userName": issuer.name},
                                       "attributes": {"creationDate": created, "mfaAuthenticated": "false"}}}
        if a.kind == "SAMLUser":
            return {"type": "SAMLUser", "principalId": f"{a.unique_id}:{a.session}", "userName": a.session,
                    "identityProvider": a.unique_id}
        if a.kind == "WebIdentityUser":
            return {"type": "WebIdentityUser", "principalId": a.unique_id, "userName": a.name,
                    "identityProvider": a.extra.get("provider", "").split("/", 1)[-1]}
        if a.kind == "Root":
            ident = {"type": "Root", "principalId": acct, "arn": f"arn:aws:iam::{acct}:root", "accountId": acct,
                     "accessKeyId": ""}
            if a.extra.get("console"):
                ident["sessionContext"] = {"attributes": {"creationDate": created, "mfaAuthenticated": "true"}}
            return ident
        if a.kind == "AWSService":
            return {"type": "AWSService", "invokedBy": a.name}
        if a.kind == "AWSAccount":
            if a.extra.get("anonymous"):
                return {"type": "AWSAccount", "principalId": "", "accountId": "anonymous"}
            return {"type": "AWSAccount", "principalId": a.unique_id, "accountId": acct}
        raise AssertionError(a.kind)

    def request(self, a: Actor, c: Call, resource: str | None, when: datetime) -> tuple[Any, Any, list[dict[str, Any]]]:
        t = c.template
        params: Any = None
        response: Any = None
        resources: list[dict[str, Any]] = []
        if resource:
            owner = c.recipient or a.account_id
            rtype = _RESOURCE_TYPES.get(t.target)
            if t.target == "object":
                bucket_arn, _, key = resource.partition("/")
                bucket = bucket_arn.split(":::", 1)[1]
                params = {"bucketName": bucket, "key": key, "Host": f"{bucket}.s3.{'amazonaws.com'}"}
                resources = [{"type": "AWS::S3::Object", "ARN": resource},
                             {"accountId": owner, "type": "AWS::S3::Bucket", "ARN": bucket_arn}]
            elif t.target == "bucket":
                params = {"bucketName": resource.split(":::", 1)[1], "Host": "s3.amazonaws.com"}
                resources = [{"accountId": owner, "type": "AWS::S3::Bucket", "ARN": resource}]
            elif t.target == "role":
                name = resource.rsplit("/", 1)[1]
                if t.source == "sts.amazonaws.com":
                    session = a.session or name
                    if t.name == "AssumeRole" and a.kind == "AWSService":
                        session = f"{a.name.split('.')[0]}-{self.rng.getrandbits(32):08x}"
                    params = {"roleArn": resource, "roleSessionName": session, "durationSeconds": 3600}
                    if t.name == "AssumeRoleWithSAML":
                        params["principalArn"] = a.extra.get("provider", "")
                    if t.name == "AssumeRoleWithWebIdentity":
                        params["roleSessionName"] = "GitHubActions"
                    response = {"credentials": {"accessKeyId": "ASIA" + f"{self.rng.getrandbits(64):016X}",
                                                "expiration": iso(when + timedelta(hours=1))},
                                "assumedRoleUser": {"arn": resource.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/", 1)
                                                    + f"/{params['roleSessionName']}"}}
                else:
                    params = {"roleName": name}
            elif t.target == "function":
                params = {"functionName": resource}
            elif t.target == "table":
                params = {"tableName": resource.rsplit("/", 1)[1]}
            elif t.target == "key":
                params = {"keyId": resource}
                if t.name in ("Decrypt", "Encrypt", "GenerateDataKey"):
                    params["encryptionAlgorithm"] = "SYMMETRIC_DEFAULT"
            elif t.target == "secret":
                params = {"secretId": resource}
            elif t.target == "queue":
                parts = resource.split(":")
                params = {"queueUrl": f"https://sqs.{parts[3]}.amazonaws.com/{parts[4]}/{parts[5]}"}
            elif t.target == "topic":
                params = {"topicArn": resource}
            elif t.target == "user":
                params = {"userName": resource.rsplit("/", 1)[1]}
            elif t.target == "policy":
                params = {"policyArn": resource}
            elif t.target == "trail":
                params = {"name": resource}
            elif t.target == "instance":
                iid = resource.rsplit("/", 1)[1]
                if t.source == "ssm.amazonaws.com":
                    params = {"instanceIds": [iid], "documentName": "AWS-RunShellScript"} if t.name == "SendCommand" \
                        else {"target": iid}
                else:
                    params = {"instancesSet": {"items": [{"instanceId": iid}]}}
            elif t.target == "stream":
                params = {"streamName": resource.rsplit("/", 1)[1]}
            elif t.target == "loggroup":
                params = {"logGroupName": resource.split("log-group:", 1)[1]}
            elif t.target == "param":
                params = {"name": resource.split("parameter", 1)[1], "withDecryption": True}
            else:
                params = {"resourceArn": resource}
            if rtype and not resources:
                resources = [{"accountId": owner, "type": rtype, "ARN": resource}]
        return params, response, resources

    def record(self, a: Actor, c: Call, when: datetime, region: str, *, error: str | None = None,
               recipient: str | None = None, as_account: bool = False, shared: str | None = None) -> dict[str, Any]:
        t = c.template
        resource = c.resource
        if resource and t.target == "object" and resource.endswith("/"):
            resource = resource + self.rng.choice(_OBJECT_KEYS)
        params, response, resources = self.request(a, c, resource, when)
        if c.params:
            params = {**(params or {}), **c.params}
        rec: dict[str, Any] = {
            "eventVersion": "1.09" if t.data or t.source == "sts.amazonaws.com" else "1.08",
            "userIdentity": self.identity(a, when, as_account=as_account),
            "eventTime": iso(when),
            "eventSource": t.source,
            "eventName": t.name,
            "awsRegion": region,
            "sourceIPAddress": a.ip,
            "userAgent": a.user_agent,
        }
        if a.kind == "AWSService":
            rec["sourceIPAddress"] = a.name
        err = error or c.error
        if err:
            action = t.action or t.name
            rec["errorCode"] = err
            who = rec["userIdentity"].get("arn", a.principal_arn)
            rec["errorMessage"] = (f"User: {who} is not authorized to perform: {action} on resource: "
                                   f"{resource or '*'} because no identity-based policy allows the {action} action")
        rec["requestParameters"] = params
        rec["responseElements"] = None if err else response
        if t.key == "signin.ConsoleLogin":
            rec["responseElements"] = {"ConsoleLogin": "Success"}
            rec["additionalEventData"] = {"LoginTo": "https://console.aws.amazon.com/console/home",
                                          "MobileVersion": "No", "MFAUsed": "Yes"}
        if a.kind == "AWSService" or (a.kind in ("AssumedRole",) and c.template.key.startswith("logs.")
                                      and "exec-env" in a.user_agent):
            rec["userIdentity"].setdefault("invokedBy", a.name if a.kind == "AWSService" else None)
            if rec["userIdentity"]["invokedBy"] is None:
                del rec["userIdentity"]["invokedBy"]
        rec["requestID"] = _uuid(self.rng)
        rec["eventID"] = _uuid(self.rng)
        rec["readOnly"] = t.read_only
        if resources:
            rec["resources"] = resources
        rec["eventType"] = "AwsConsoleSignIn" if t.key == "signin.ConsoleLogin" else "AwsApiCall"
        rec["managementEvent"] = not t.data
        rec["recipientAccountId"] = recipient or c.recipient or a.account_id
        if shared:
            rec["sharedEventID"] = shared
        rec["eventCategory"] = "Data" if t.data else "Management"
        if t.source not in ("signin.amazonaws.com",) and a.kind != "AWSService":
            rec["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                                 "clientProvidedHostHeader": t.source.replace(".amazonaws.com", f".{region}.amazonaws.com")}
        return rec

    def emit(self, pair: _Pair, when: datetime, *, region: str | None = None, error: str | None = None) -> None:
        a, c = pair.actor, pair.call
        t = c.template
        reg = region or c.region
        if reg is None:
            reg = a.regions[0] if len(a.regions) == 1 else self.rng.choice(a.regions)
        if t.source in ("iam.amazonaws.com", "signin.amazonaws.com", "organizations.amazonaws.com",
                        "route53.amazonaws.com", "cloudfront.amazonaws.com", "ce.amazonaws.com", "health.amazonaws.com"):
            reg = "us-east-1"  # global services log in us-east-1
        self.usage.events += 1
        self.usage.note(a, c, iso(when), reg)
        if pair.cross:
            shared = _uuid(self.rng)
            self._add(a.account_id, reg, self.record(a, c, when, reg, error=error, recipient=a.account_id, shared=shared))
            self._add(c.recipient or a.account_id, reg,
                      self.record(a, c, when, reg, error=error, as_account=True, shared=shared))
            self.usage.events += 1
            self.usage.identity_types.add("AWSAccount")
        else:
            rec = self.record(a, c, when, reg, error=error)
            self._add(rec["recipientAccountId"], reg, rec)
        self.usage.identity_types.add(a.kind if a.kind != "SSO" else "AssumedRole")

    def _add(self, account: str, region: str, rec: dict[str, Any]) -> None:
        key = (account, region)
        self.buffers.setdefault(key, []).append(rec)

    def flush(self, hour: datetime) -> None:
        for (account, region), records in sorted(self.buffers.items()):
            if not records:
                continue
            delivered = hour + timedelta(minutes=55 + self.rng.randint(0, 9))
            stamp = delivered.strftime("%Y%m%dT%H%MZ")
            suffix = "".join(self.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
                             for _ in range(16))
            if self.write:
                path = (self.root / "AWSLogs" / self.org_id / account / "CloudTrail" / region /
                        delivered.strftime("%Y/%m/%d") / f"{account}_CloudTrail_{region}_{stamp}_{suffix}.json.gz")
                data = gzip.compress(orjson.dumps({"Records": records}), compresslevel=5, mtime=0)
                # The whole tree is written into a fresh staging directory that replaces the old one at the
                # end (see generate_demo), so per-file fsync would buy nothing.
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            self.usage.files += 1
        self.buffers.clear()


def stream_activity(world: World, root: Path | None) -> Usage:
    """Emit the window's CloudTrail records (into ``root`` when given) and return what they add up to."""
    cfg = world.cfg
    rng = random.Random(f"iamgraph-demo-activity-{cfg.seed}")
    writer = _Writer(world, root if root is not None else Path("."), rng)
    writer.write = root is not None
    pairs = _pairs(world)
    baseline = [p for p in pairs if p.actor.principal_arn not in world.never_used]
    cum = list(accumulate(p.actor.weight * p.call.weight for p in baseline))
    total = cum[-1] if cum else 0.0
    start = cfg.end_date - timedelta(days=cfg.days)
    coverage_days = max(cfg.days - 1, 1)
    # Coverage: every baseline pair at least once before the last day (planted actors first), as far as the
    # budget allows, so "used" in the manifest is used in the files.
    budget = cfg.days * cfg.events_per_day
    order = sorted(range(len(baseline)), key=lambda i: (not baseline[i].actor.planted, i))
    per_day: dict[int, list[tuple[float, int]]] = {}
    for n, i in enumerate(order[: max(budget, sum(1 for p in baseline if p.actor.planted))]):
        day = (n * 7919 + i) % coverage_days
        per_day.setdefault(day, []).append((rng.random() * 86_400, i))
    hour_cum = list(accumulate(_HOUR_WEIGHTS))
    hour_total = hour_cum[-1]
    deviations: dict[int, list[tuple[float, Planned, int]]] = {}
    for dv in world.deviations:
        for k in range(dv.count):
            sec = dv.minute * 60 + (k * dv.spread_seconds) / max(dv.count, 1)
            deviations.setdefault(int(sec // 3600), []).append((sec, dv, k))
    last_day = cfg.days - 1
    for day in range(cfg.days):
        day_start = start + timedelta(days=day)
        cover = sorted(per_day.pop(day, []))
        remaining = max(cfg.events_per_day - len(cover), 0)
        counts = [0] * 24
        for _ in range(remaining):
            counts[bisect_right(hour_cum, rng.random() * hour_total)] += 1
        ci = 0
        for hour in range(24):
            hour_start = day_start + timedelta(hours=hour)
            items: list[tuple[float, int, int]] = []
            while ci < len(cover) and cover[ci][0] < (hour + 1) * 3600:
                items.append((cover[ci][0], 0, cover[ci][1]))
                ci += 1
            if counts[hour] and total > 0:
                for _ in range(counts[hour]):
                    idx = bisect_right(cum, rng.random() * total)
                    items.append((hour * 3600 + rng.random() * 3600, 0, min(idx, len(baseline) - 1)))
            items.sort()
            for sec, _, idx in items:
                writer.emit(baseline[idx], day_start + timedelta(seconds=int(sec)))
            if day == last_day:
                for sec, dv, _k in sorted(deviations.get(hour, []), key=lambda x: (x[0], x[2])):
                    writer.emit(_Pair(dv.actor, dv.call, False), day_start + timedelta(seconds=int(sec)),
                                region=dv.region, error=dv.call.error)
            writer.flush(hour_start)
    return writer.usage


def deviation_windows(world: World) -> dict[str, tuple[str, str]]:
    """First and last eventTime of each planted deviation's records."""
    last_day = world.cfg.end_date - timedelta(days=1)
    out: dict[str, tuple[str, str]] = {}
    for dv in world.deviations:
        times = [last_day + timedelta(seconds=int(dv.minute * 60 + (k * dv.spread_seconds) / max(dv.count, 1)))
                 for k in range(dv.count)]
        lo, hi = iso(min(times)), iso(max(times))
        if dv.item_id in out:
            lo, hi = min(lo, out[dv.item_id][0]), max(hi, out[dv.item_id][1])
        out[dv.item_id] = (lo, hi)
    return out


def iter_files(root: Path) -> Iterator[Path]:
    yield from sorted(root.rglob("*.json.gz"))
