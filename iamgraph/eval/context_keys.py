"""Which condition keys a request for an action can carry, per the Service Authorization Reference.

A service sends only the keys its action supports: the keys listed for the action, for its resource
types, and the global ``aws:`` keys
(https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html). A key a
caller supplies for an action that does not support it would never be in AWS's request, so the
engine treats it as absent and says so (``Decision.unsupported_keys``).

Only keys in a service's own namespace are judged: an unknown action, or a key whose prefix is no
service of the catalog (identity-provider keys such as ``token.actions.githubusercontent.com:sub``,
which the reference lists only in part), is left as given -- unknown is not "unsupported".
"""

from __future__ import annotations

from collections.abc import Iterable

from iamgraph.catalog import condition_key_matches, get_catalog

_Supported = tuple[frozenset[str], tuple[str, ...]] | None
"""(exact keys lower-cased, templated keys) or None when the action is not in the catalog."""

_cache: dict[str, _Supported] = {}
_services: list[frozenset[str]] = []


def _supported(action_l: str) -> _Supported:
    if action_l in _cache:
        return _cache[action_l]
    cat = get_catalog()
    info = cat.action(action_l)
    out: _Supported = None
    if info is not None:
        keys = set(info.condition_keys)
        for ref in info.resource_types:
            keys.update(ref.condition_keys)
            rtype = cat.resource_type(info.service, ref.name)
            if rtype is not None:
                keys.update(rtype.condition_keys)
        exact = frozenset(k.lower() for k in keys if "${" not in k and "<" not in k)
        templates = tuple(k for k in keys if "${" in k or "<" in k)
        out = (exact, templates)
    _cache[action_l] = out
    return out


def unsupported_keys(action_l: str, keys: Iterable[str]) -> tuple[str, ...]:
    """The keys (lower-cased) that ``action_l`` never carries, in the order given."""
    # Requests for one action mostly carry the same keys, and what-can's action classes ask for every action
    # of the catalog with the keys a policy set reads: the answer is kept per (action, keys).
    asked = (action_l, tuple(keys))
    hit = _answers.get(asked)
    if hit is None:
        hit = _unsupported(action_l, asked[1])
        if len(_answers) > 200_000:
            _answers.clear()
        _answers[asked] = hit
    return hit


_answers: dict[tuple[str, tuple[str, ...]], tuple[str, ...]] = {}


def _unsupported(action_l: str, keys: tuple[str, ...]) -> tuple[str, ...]:
    supported = _supported(action_l)
    if supported is None:
        return ()
    exact, templates = supported
    if not _services:
        _services.append(frozenset(get_catalog().services()))
    services = _services[0]
    out: list[str] = []
    for key in keys:
        prefix = key.partition(":")[0]
        if prefix == "aws" or prefix not in services or key in exact:
            continue
        verdict = _templated.get((action_l, key))
        if verdict is None:
            verdict = any(condition_key_matches(t, key) for t in templates)
            if len(_templated) > 100_000:
                _templated.clear()
            _templated[(action_l, key)] = verdict
        if not verdict:
            out.append(key)
    return tuple(out)


_templated: dict[tuple[str, str], bool] = {}
