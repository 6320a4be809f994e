"""Detection settings: the ``detect:`` section of the project config file ``iamgraph.yaml``.

Documented in docs/detect.md. Unknown keys are refused (a typo must not silently disable a sink).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from iamgraph.config import read_config
from iamgraph.detect.types import Severity
from iamgraph.errors import InputError


class DetectConfigError(InputError):
    """A ``detect:`` section that cannot be used."""


class SinkKind(StrEnum):
    STDOUT = "stdout"
    WEBHOOK = "webhook"
    SYSLOG = "syslog"
    ASFF = "asff"


class WebhookFormat(StrEnum):
    SLACK = "slack"
    TEAMS = "teams"
    """Microsoft Teams incoming webhook, legacy MessageCard."""
    TEAMS_ADAPTIVE = "teams-adaptive"
    """Microsoft Teams (Workflows) message with an Adaptive Card attachment."""


class SyslogProtocol(StrEnum):
    UDP = "udp"
    TCP = "tcp"


@dataclass(frozen=True, slots=True, kw_only=True)
class SinkConfig:
    name: str
    """Unique; names the sink's spool directory."""
    kind: SinkKind
    min_severity: Severity = Severity.INFORMATIONAL
    url: str | None = None
    format: WebhookFormat = WebhookFormat.SLACK
    retries: int = 4
    backoff_seconds: float = 1.0
    """First retry delay; doubled on each retry (exponential back-off)."""
    timeout_seconds: float = 10.0
    host: str | None = None
    port: int = 514
    protocol: SyslogProtocol = SyslogProtocol.UDP
    app_name: str = "iamgraph"
    facility: int = 10
    """RFC 5424 facility; 10 = security/authorization (authpriv)."""
    path: str | None = None
    """ASFF output file."""
    product_account: str | None = None
    """ASFF ``AwsAccountId`` fallback and ``ProductArn`` account (default: the alert's account)."""
    region: str = "us-east-1"


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectConfig:
    baseline_days: int = 90
    burst_threshold: int = 10
    burst_window: timedelta = timedelta(minutes=10)
    extra_sensitive_actions: tuple[str, ...] = ()
    ignore_principals: tuple[str, ...] = ()
    """Principals (exact names or ``fnmatch`` patterns) never alerted on, e.g. a deployment pipeline role."""
    min_severity: Severity = Severity.INFORMATIONAL
    spool_dir: str = ".iamgraph/spool"
    sinks: tuple[SinkConfig, ...] = field(default_factory=tuple)


_TOP = {
    "baseline_days",
    "burst",
    "sensitive_actions",
    "ignore_principals",
    "min_severity",
    "spool_dir",
    "sinks",
}
_SINK = {
    "name",
    "type",
    "min_severity",
    "url",
    "format",
    "retries",
    "backoff_seconds",
    "timeout_seconds",
    "host",
    "port",
    "protocol",
    "app_name",
    "facility",
    "path",
    "product_account",
    "region",
}


def _err(msg: str, source: str, loc: str) -> DetectConfigError:
    return DetectConfigError(msg, source=source, location=loc)


def _enum(cls: type[StrEnum], value: Any, source: str, loc: str) -> Any:
    try:
        return cls(str(value).upper() if cls is Severity else str(value))
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise _err(f"{value!r} is not one of: {allowed}", source, loc) from None


def _int(value: Any, source: str, loc: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _err(f"must be a whole number from {lo} to {hi}, got {value!r}", source, loc)
    return value


def _num(value: Any, source: str, loc: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _err(f"must be a non-negative number, got {value!r}", source, loc)
    return float(value)


def _strs(value: Any, source: str, loc: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _err("must be a list of strings", source, loc)
    return tuple(value)


def _sink(raw: Any, i: int, source: str) -> SinkConfig:
    loc = f"detect.sinks[{i}]"
    if not isinstance(raw, dict):
        raise _err("must be a mapping", source, loc)
    unknown = sorted(set(raw) - _SINK)
    if unknown:
        raise _err(f"unknown keys: {', '.join(unknown)}", source, loc)
    kind = _enum(SinkKind, raw.get("type"), source, f"{loc}.type")
    name = str(raw.get("name") or kind.value)
    if not name.replace("-", "").replace("_", "").isalnum():
        raise _err(f"name {name!r} may hold only letters, digits, - and _", source, f"{loc}.name")
    kw: dict[str, Any] = {"name": name, "kind": kind}
    if "min_severity" in raw:
        kw["min_severity"] = _enum(Severity, raw["min_severity"], source, f"{loc}.min_severity")
    if kind is SinkKind.WEBHOOK:
        url = raw.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise _err("a webhook needs an http(s) url", source, f"{loc}.url")
        kw["url"] = url
        if "format" in raw:
            kw["format"] = _enum(WebhookFormat, raw["format"], source, f"{loc}.format")
    if kind is SinkKind.SYSLOG:
        host = raw.get("host")
        if not isinstance(host, str) or not host:
            raise _err("a syslog sink needs a host", source, f"{loc}.host")
        kw["host"] = host
        if "port" in raw:
            kw["port"] = _int(raw["port"], source, f"{loc}.port", 1, 65535)
        if "protocol" in raw:
            kw["protocol"] = _enum(SyslogProtocol, raw["protocol"], source, f"{loc}.protocol")
        if "facility" in raw:
            kw["facility"] = _int(raw["facility"], source, f"{loc}.facility", 0, 23)
        if "app_name" in raw:
            kw["app_name"] = str(raw["app_name"])
    if kind is SinkKind.ASFF:
        path = raw.get("path")
        if not isinstance(path, str) or not path:
            raise _err("an asff sink needs a path", source, f"{loc}.path")
        kw["path"] = path
        if "product_account" in raw:
            kw["product_account"] = str(raw["product_account"])
        if "region" in raw:
            kw["region"] = str(raw["region"])
    if "retries" in raw:
        kw["retries"] = _int(raw["retries"], source, f"{loc}.retries", 0, 20)
    for key in ("backoff_seconds", "timeout_seconds"):
        if key in raw:
            kw[key] = _num(raw[key], source, f"{loc}.{key}")
    return SinkConfig(**kw)


def parse_detect(data: Any, *, source: str = "iamgraph.yaml") -> DetectConfig:
    """The ``detect:`` section of a loaded config document (a missing section gives the defaults)."""
    if data is None:
        return DetectConfig()
    if not isinstance(data, dict):
        raise _err("the config file must be a mapping", source, "")
    sec = data.get("detect")
    if sec is None:
        return DetectConfig()
    if not isinstance(sec, dict):
        raise _err("must be a mapping", source, "detect")
    unknown = sorted(set(sec) - _TOP)
    if unknown:
        raise _err(f"unknown keys: {', '.join(unknown)}", source, "detect")
    kw: dict[str, Any] = {}
    if "baseline_days" in sec:
        kw["baseline_days"] = _int(sec["baseline_days"], source, "detect.baseline_days", 1, 3650)
    burst = sec.get("burst")
    if burst is not None:
        if not isinstance(burst, dict) or set(burst) - {"threshold", "window_minutes"}:
            raise _err("must be a mapping with threshold and window_minutes", source, "detect.burst")
        if "threshold" in burst:
            kw["burst_threshold"] = _int(burst["threshold"], source, "detect.burst.threshold", 1, 1_000_000)
        if "window_minutes" in burst:
            minutes = _num(burst["window_minutes"], source, "detect.burst.window_minutes")
            kw["burst_window"] = timedelta(minutes=minutes)
    if "sensitive_actions" in sec:
        kw["extra_sensitive_actions"] = _strs(sec["sensitive_actions"], source, "detect.sensitive_actions")
    if "ignore_principals" in sec:
        kw["ignore_principals"] = _strs(sec["ignore_principals"], source, "detect.ignore_principals")
    if "min_severity" in sec:
        kw["min_severity"] = _enum(Severity, sec["min_severity"], source, "detect.min_severity")
    if "spool_dir" in sec:
        kw["spool_dir"] = str(sec["spool_dir"])
    sinks_raw = sec.get("sinks")
    if sinks_raw is not None:
        if not isinstance(sinks_raw, list):
            raise _err("must be a list", source, "detect.sinks")
        sinks = tuple(_sink(s, i, source) for i, s in enumerate(sinks_raw))
        names = [s.name for s in sinks]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise _err(
                f"sink names must be unique (give each a name): {', '.join(dup)}", source, "detect.sinks"
            )
        kw["sinks"] = sinks
    return DetectConfig(**kw)


def load_detect_config(path: str | Path) -> DetectConfig:
    doc = read_config(path, error=DetectConfigError)
    return parse_detect(doc.data, source=doc.source)
