"""Recommender settings: the ``recommend:`` section of the project config file ``iamgraph.yaml``.

```yaml
recommend:
  keep_sid_prefixes: ["Keep", "iamgraph:keep"]   # statements whose Sid starts with one of these are left alone
  resource_wildcard_threshold: 10                 # more distinct ARNs than this for one action: generalise
  s3_prefix_threshold: 2                          # this many S3 object keys used under one prefix: grant prefix/*
  exact_keys: false                               # true: never generalise S3 object keys (--exact-keys)
  managed_policy_quota: 10                        # managed policies per identity (AWS default 10; raised: up to 20)
  exclude:
    accounts: ["111122223333"]                    # principals of these accounts are left alone
    principals: ["arn:aws:iam::111122223333:role/break-glass"]
    tags: {"iamgraph:recommend": "skip"}          # principals carrying this tag (key: value) are left alone
    actions: ["sts:AssumeRole"]                   # always kept where the original grants them
  accept_incomplete_evidence: false               # true: propose even where the evidence does not cover the window
  data_events:                                    # services whose data events each account's trail logs
    "111122223333": ["s3", "lambda"]              # (replaces what the store shows; "*" for other accounts)
```

What each account and region's trails log is the top-level ``evidence.logged`` section, shared with ``unused``
(``iamgraph.usage.logged``); ``recommend.data_events`` is its older per-account form (``evidence.logged`` wins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iamgraph.config import read_config
from iamgraph.errors import InputError
from iamgraph.usage.logged import LoggedOverride, parse_logged_config

DEFAULT_KEEP_PREFIXES = ("Keep", "iamgraph:keep")


class RecommendConfigError(InputError):
    """The ``recommend`` section of the config file is malformed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecommendConfig:
    keep_sid_prefixes: tuple[str, ...] = DEFAULT_KEEP_PREFIXES
    resource_wildcard_threshold: int = 10
    s3_prefix_threshold: int = 2
    """At least this many distinct S3 object keys used under one prefix: the prefix (``reports/*``) is granted."""
    exact_keys: bool = False
    """Never generalise S3 object keys to a prefix (``--exact-keys``)."""
    managed_policy_quota: int = 10
    """Managed policies one identity may have attached: AWS's default is 10, adjustable to 20
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html)."""
    exclude_accounts: frozenset[str] = frozenset()
    exclude_principals: frozenset[str] = frozenset()
    exclude_tags: tuple[tuple[str, str], ...] = ()
    exclude_actions: tuple[str, ...] = ()
    accept_incomplete_evidence: bool = False
    """Propose removals although the evidence does not cover the window (``--accept-incomplete-evidence``)."""
    data_events: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Per account id (or ``*``): services whose data events its trail logs, replacing what the store shows."""
    logged: LoggedOverride = field(default_factory=LoggedOverride)
    """The ``evidence.logged`` section: what each account and region's trails log (shared with ``unused``)."""

    def keeps_sid(self, sid: str | None) -> bool:
        return sid is not None and any(sid.startswith(p) for p in self.keep_sid_prefixes)


def _strs(value: Any, where: str, source: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecommendConfigError(f"{where} must be a list of strings", source=source, location=where)
    return tuple(value)


def parse_config(data: Any, *, source: str = "iamgraph.yaml") -> RecommendConfig:
    """The recommender settings from a parsed config file (its ``recommend`` section; absent = defaults)."""
    if data is None:
        return RecommendConfig()
    if not isinstance(data, dict):
        raise RecommendConfigError("the config file must hold a mapping", source=source)
    rec = data.get("recommend")
    if rec is None:
        return RecommendConfig(logged=parse_logged_config(data, source=source))
    if not isinstance(rec, dict):
        raise RecommendConfigError("recommend must be a mapping", source=source, location="recommend")
    known = {"keep_sid_prefixes", "resource_wildcard_threshold", "exclude", "accept_incomplete_evidence",
             "data_events", "s3_prefix_threshold", "exact_keys", "managed_policy_quota"}
    unknown = sorted(set(rec) - known)
    if unknown:
        raise RecommendConfigError(f"unknown setting(s) {', '.join(map(str, unknown))}", source=source,
                                   location="recommend")
    threshold = rec.get("resource_wildcard_threshold", 10)
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
        raise RecommendConfigError("resource_wildcard_threshold must be a positive integer", source=source,
                                   location="recommend.resource_wildcard_threshold")
    s3_threshold = rec.get("s3_prefix_threshold", 2)
    if not isinstance(s3_threshold, int) or isinstance(s3_threshold, bool) or s3_threshold < 1:
        raise RecommendConfigError("s3_prefix_threshold must be a positive integer", source=source,
                                   location="recommend.s3_prefix_threshold")
    exact_keys = rec.get("exact_keys", False)
    if not isinstance(exact_keys, bool):
        raise RecommendConfigError("exact_keys must be true or false", source=source, location="recommend.exact_keys")
    quota = rec.get("managed_policy_quota", 10)
    if not isinstance(quota, int) or isinstance(quota, bool) or not 1 <= quota <= 20:
        raise RecommendConfigError("managed_policy_quota must be an integer from 1 to 20 (AWS's maximum)",
                                   source=source, location="recommend.managed_policy_quota")
    exc = rec.get("exclude") or {}
    if not isinstance(exc, dict):
        raise RecommendConfigError("exclude must be a mapping", source=source, location="recommend.exclude")
    bad = sorted(set(exc) - {"accounts", "principals", "tags", "actions"})
    if bad:
        raise RecommendConfigError(f"unknown exclusion(s) {', '.join(map(str, bad))}", source=source,
                                   location="recommend.exclude")
    tags = exc.get("tags") or {}
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise RecommendConfigError("exclude.tags must map tag keys to values", source=source,
                                   location="recommend.exclude.tags")
    prefixes = rec.get("keep_sid_prefixes", list(DEFAULT_KEEP_PREFIXES))
    de = rec.get("data_events") or {}
    if not isinstance(de, dict):
        raise RecommendConfigError("data_events must map account ids (or \"*\") to lists of services", source=source,
                                   location="recommend.data_events")
    data_events = tuple(sorted((str(k), _strs(v, f"recommend.data_events.{k}", source)) for k, v in de.items()))
    accept = rec.get("accept_incomplete_evidence", False)
    if not isinstance(accept, bool):
        raise RecommendConfigError("accept_incomplete_evidence must be true or false", source=source,
                                   location="recommend.accept_incomplete_evidence")
    return RecommendConfig(
        keep_sid_prefixes=_strs(prefixes, "recommend.keep_sid_prefixes", source),
        resource_wildcard_threshold=threshold,
        s3_prefix_threshold=s3_threshold,
        exact_keys=exact_keys,
        managed_policy_quota=quota,
        exclude_accounts=frozenset(str(a) for a in _strs(exc.get("accounts"), "recommend.exclude.accounts", source)),
        exclude_principals=frozenset(_strs(exc.get("principals"), "recommend.exclude.principals", source)),
        exclude_tags=tuple(sorted(tags.items())),
        exclude_actions=_strs(exc.get("actions"), "recommend.exclude.actions", source),
        accept_incomplete_evidence=accept,
        data_events=data_events,
        logged=parse_logged_config(data, source=source),
    )


def load_config(path: str | Path) -> RecommendConfig:
    """Read ``iamgraph.yaml``; a missing file is an error (the caller decides whether one is required)."""
    doc = read_config(path, error=RecommendConfigError)
    return parse_config(doc.data, source=doc.source)
