"""Server settings and limits. Built by ``iamgraph serve`` (through the environment) or directly in tests."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from iamgraph.errors import InputError
from iamgraph.recommend.config import RecommendConfig, load_config
from iamgraph.serving.settings import ENV_PREFIX, is_loopback


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Every bound on what one request may ask. Exceeding one is a 4xx naming the limit, never a 500."""

    max_body_bytes: int = 1_048_576
    max_policy_chars: int = 20_480
    """Larger than any policy AWS accepts (role inline policies: 10,240 characters), so a real policy always fits.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html"""
    max_batch: int = 1000
    max_paths: int = 20
    max_page_size: int = 500
    default_page_size: int = 100
    time_limit_seconds: float = 30.0
    max_grant_actions: int = 5_000
    """Actions of a grant diffed one by one (``*`` expands to all ~17,000; past this the diff is marked
    truncated and the verdict is at least review: a grant that broad deserves a human anyway)."""
    max_diff_checks: int = 20_000
    """(action, resource) pairs one access-request evaluation diffs (two engine calls each)."""
    max_context_keys: int = 100
    max_json_depth: int = 32
    """Arrays/objects nested in a request body. A policy needs about 6 (Statement, a statement, Condition, an
    operator, a key, its values), a simulate body with explicit policies about 10."""
    max_json_values: int = 200_000
    """Values (arrays, objects, strings, numbers, ...) in a request body: a full 1,000-line simulate batch with
    a policy on every line stays under it."""
    work_threads: int = 4
    """Threads for graph-bound work (api.admission). The work is Python and mostly CPU-bound, so more threads
    than cores buys little throughput; a few let a short request pass a long one."""
    max_queued: int = 64
    """Admitted requests waiting for a work thread; past this, 429 with Retry-After."""
    max_per_token: int = 16
    """Requests one token may have running or waiting; past this, 429 for that token only."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    snapshot: Path
    usage: Path | None = None
    token_file: Path | None = None
    audit_log: Path | None = None
    allow_anonymous_local: bool = False
    """Serve without tokens, to loopback callers only. Only allowed when ``host`` is a loopback address."""
    host: str = "127.0.0.1"
    limits: Limits = field(default_factory=Limits)
    warm_graph: bool = False
    """Build the access graph at start (else on first use)."""
    allow_unhashed_snapshot: bool = False
    """Let a reload swap in a snapshot that has no content hash (refused by default)."""
    config: Path | None = None
    """The project config file (``iamgraph.yaml``) ``iamgraph serve --config`` named; ``recommend`` is read from it."""
    recommend: RecommendConfig = field(default_factory=RecommendConfig)
    """Its ``recommend`` and ``evidence.logged`` sections, read once at start (:meth:`from_env`): the
    recommendation endpoint follows both, the unused endpoint ``evidence.logged`` (what each account and region's
    trails log), as ``iamgraph recommend`` and ``iamgraph unused`` do with ``--config``."""

    def check(self) -> Settings:
        if self.token_file is None and not self.allow_anonymous_local:
            raise InputError(
                "no token file: every endpoint needs a bearer token; give --token-file "
                "(create tokens with 'iamgraph token create') or --allow-anonymous-local for local use"
            )
        if self.allow_anonymous_local and not is_loopback(self.host):
            raise InputError(
                f"--allow-anonymous-local serves without tokens and is only allowed on a loopback address, "
                f"not {self.host!r}"
            )
        return self

    def to_env(self) -> dict[str, str]:
        env = {
            f"{ENV_PREFIX}SNAPSHOT": str(self.snapshot),
            f"{ENV_PREFIX}HOST": self.host,
            f"{ENV_PREFIX}ALLOW_ANONYMOUS_LOCAL": "1" if self.allow_anonymous_local else "0",
            f"{ENV_PREFIX}WARM_GRAPH": "1" if self.warm_graph else "0",
            f"{ENV_PREFIX}ALLOW_UNHASHED_SNAPSHOT": "1" if self.allow_unhashed_snapshot else "0",
            f"{ENV_PREFIX}TIME_LIMIT": str(self.limits.time_limit_seconds),
            f"{ENV_PREFIX}WORK_THREADS": str(self.limits.work_threads),
            f"{ENV_PREFIX}MAX_QUEUED": str(self.limits.max_queued),
            f"{ENV_PREFIX}MAX_PER_TOKEN": str(self.limits.max_per_token),
        }
        for key, value in (("USAGE", self.usage), ("TOKEN_FILE", self.token_file), ("AUDIT_LOG", self.audit_log),
                           ("CONFIG", self.config)):
            if value is not None:
                env[f"{ENV_PREFIX}{key}"] = str(value)
        return env

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(key: str) -> str | None:
            value = env.get(ENV_PREFIX + key)
            return value if value else None

        snapshot = get("SNAPSHOT")
        if snapshot is None:
            raise InputError(f"{ENV_PREFIX}SNAPSHOT is not set (start the server with 'iamgraph serve')")
        usage, tokens, audit, config = get("USAGE"), get("TOKEN_FILE"), get("AUDIT_LOG"), get("CONFIG")
        limits = Limits()
        if (raw := get("TIME_LIMIT")) is not None:
            try:
                seconds = float(raw)
            except ValueError:
                raise InputError(f"{ENV_PREFIX}TIME_LIMIT must be a number of seconds, not {raw!r}") from None
            if not 0 < seconds <= 3600:
                raise InputError(f"{ENV_PREFIX}TIME_LIMIT must be from 0 to 3600 seconds, not {raw}")
            limits = replace(limits, time_limit_seconds=seconds)
        for key, attr, low, high in (("WORK_THREADS", "work_threads", 1, 256), ("MAX_QUEUED", "max_queued", 0, 100_000),
                                     ("MAX_PER_TOKEN", "max_per_token", 1, 100_000)):
            if (raw := get(key)) is not None:
                if not (raw.isdigit() and low <= int(raw) <= high):
                    raise InputError(f"{ENV_PREFIX}{key} must be a whole number from {low} to {high}, not {raw!r}")
                limits = replace(limits, **{attr: int(raw)})
        return cls(
            snapshot=Path(snapshot),
            usage=Path(usage) if usage else None,
            token_file=Path(tokens) if tokens else None,
            audit_log=Path(audit) if audit else None,
            allow_anonymous_local=get("ALLOW_ANONYMOUS_LOCAL") == "1",
            host=get("HOST") or "127.0.0.1",
            warm_graph=get("WARM_GRAPH") == "1",
            allow_unhashed_snapshot=get("ALLOW_UNHASHED_SNAPSHOT") == "1",
            limits=limits,
            config=Path(config) if config else None,
            # A file that does not parse is an InputError naming it and the setting (serve checks it before start).
            recommend=load_config(config) if config else RecommendConfig(),
        ).check()
