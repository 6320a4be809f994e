"""``iamgraph diff OLD NEW``: what changed between two snapshots of the same estate, for the weekly drift review
(the blueprint's governance and detection principles): admins gained and lost, escalation paths opened and
closed, exposure outside the organization, SoD conflicts, and access to sensitive data.

Each side is answered by the same queries the single-snapshot commands use (privesc, exposure, sod, sensitive),
and findings are matched by identity (principal, account, kind; resource, outside principal, scope; rule,
principal, resource; resource, principal, kind of access), so a path that merely got shorter is not "new".
A finding whose definiteness changed is reported as changed, not as new.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from iamgraph.graph import AccessGraph
    from iamgraph.query.exposure import Exposure
    from iamgraph.query.privesc import Escalation
    from iamgraph.query.sensitive import SensitiveAccess
    from iamgraph.query.sod import Conflict

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Delta(Generic[T]):
    """One kind of finding on both sides: what appeared, what went away, and what changed definiteness."""

    added: tuple[T, ...]
    removed: tuple[T, ...]
    now_definite: tuple[T, ...]
    """Present on both sides, conditional before and definite now (worse)."""
    now_conditional: tuple[T, ...]
    """Present on both sides, definite before and conditional now (better)."""

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.now_definite or self.now_conditional)


@dataclass(frozen=True, slots=True, kw_only=True)
class Drift:
    admins: Delta[Escalation]
    """Principals admin-equivalent by their own policies (privesc kind ``already-admin``)."""
    escalations: Delta[Escalation]
    """Paths to admin of principals not already admin (one per principal and account)."""
    exposure: Delta[Exposure]
    sod: Delta[Conflict]
    """Conflicts of principals that are not admin-equivalent (an admin's are implied by the admins section)."""
    sensitive: Delta[SensitiveAccess]
    skipped_old: int
    skipped_new: int
    """Questions the graph build could not answer on each side (their absence of findings is not proven)."""

    @property
    def changed(self) -> bool:
        return any(d.changed for d in (self.admins, self.escalations, self.exposure, self.sod, self.sensitive))


def _delta(old: Sequence[T], new: Sequence[T], key: Callable[[T], Hashable],
           definite: Callable[[T], bool]) -> Delta[T]:
    before: dict[Hashable, T] = {}
    for x in old:
        before.setdefault(key(x), x)
    after: dict[Hashable, T] = {}
    for x in new:
        after.setdefault(key(x), x)
    both = [k for k in after if k in before]
    return Delta(
        added=tuple(after[k] for k in after if k not in before),
        removed=tuple(before[k] for k in before if k not in after),
        now_definite=tuple(after[k] for k in both if definite(after[k]) and not definite(before[k])),
        now_conditional=tuple(after[k] for k in both if not definite(after[k]) and definite(before[k])),
    )


def drift(old: AccessGraph, new: AccessGraph, *, sensitive_tag: str | None = None) -> Drift:
    """Compare the findings of two access graphs (build each with ``build_graph``)."""
    from iamgraph.query.exposure import exposure
    from iamgraph.query.privesc import EscalationKind, privesc
    from iamgraph.query.sensitive import sensitive
    from iamgraph.query.sod import load_rules, sod

    rules = load_rules()
    # Every account a principal escalates in counts, so keep them all (privesc ranks; the first per key is the best).
    esc_old, esc_new = privesc(old, per_principal=10_000), privesc(new, per_principal=10_000)

    def admins(found: list[Escalation]) -> list[Escalation]:
        return [e for e in found if e.kind is EscalationKind.ADMIN]

    def paths(found: list[Escalation]) -> list[Escalation]:
        return [e for e in found if e.kind is not EscalationKind.ADMIN]

    def esc_key(e: Escalation) -> Hashable:
        return (e.principal, e.account)

    return Drift(
        admins=_delta(admins(esc_old), admins(esc_new), esc_key, lambda e: e.definite),
        escalations=_delta(paths(esc_old), paths(esc_new), esc_key, lambda e: e.definite),
        exposure=_delta(exposure(old), exposure(new), lambda x: (x.resource, x.principal, x.scope.value),
                        lambda x: x.definite),
        # An admin holds every capability, so every rule fires for it: those are the admins section's news.
        sod=_delta([c for c in sod(old, rules) if not c.admin], [c for c in sod(new, rules) if not c.admin],
                   lambda c: (c.rule.id, c.principal, c.resource), lambda c: c.definite),
        sensitive=_delta(sensitive(old, sensitive_tag), sensitive(new, sensitive_tag),
                         lambda s: (s.resource, s.access.principal, s.kind.value), lambda s: s.access.definite),
        skipped_old=len(old.ctx.skipped),
        skipped_new=len(new.ctx.skipped),
    )
