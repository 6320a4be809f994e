"""Policy changes in a Terraform plan (``terraform show -json plan.out``).

Plan format: https://developer.hashicorp.com/terraform/internals/json-format ("Plan Representation"
and "Change Representation"): ``resource_changes[]`` each with ``address``, ``type``, ``mode`` and
``change.{actions, before, after, after_unknown}``. A value Terraform will only know at apply time
is absent from ``after`` and ``true`` in ``after_unknown``: the gate says it could not judge it.
Policy attributes hold the document as a JSON string.
"""

from __future__ import annotations

import json
from typing import Any

from iamgraph.check.locate import Located, PathKey
from iamgraph.check.types import Location, PolicyChange, PolicyDoc, PolicyKind
from iamgraph.errors import InputError

# type -> (policy attribute, kind). Attribute names from the AWS provider's resource docs
# (registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/<type>).
_POLICY_ATTRS: dict[str, tuple[str, PolicyKind]] = {
    "aws_iam_policy": ("policy", PolicyKind.IDENTITY),
    "aws_iam_role_policy": ("policy", PolicyKind.IDENTITY),
    "aws_iam_user_policy": ("policy", PolicyKind.IDENTITY),
    "aws_iam_group_policy": ("policy", PolicyKind.IDENTITY),
    "aws_s3_bucket_policy": ("policy", PolicyKind.RESOURCE),
    "aws_kms_key": ("policy", PolicyKind.RESOURCE),
    "aws_sqs_queue_policy": ("policy", PolicyKind.RESOURCE),
    "aws_sqs_queue": ("policy", PolicyKind.RESOURCE),
    "aws_sns_topic_policy": ("policy", PolicyKind.RESOURCE),
    "aws_sns_topic": ("policy", PolicyKind.RESOURCE),
}
_ATTACHMENTS = {
    "aws_iam_role_policy_attachment": ("role",),
    "aws_iam_user_policy_attachment": ("user",),
    "aws_iam_group_policy_attachment": ("group",),
    "aws_iam_policy_attachment": ("roles", "users", "groups"),
}


def changes_from_plan(doc: Located) -> list[PolicyChange]:
    plan = doc.value
    if not isinstance(plan, dict) or ("resource_changes" not in plan and "planned_values" not in plan):
        raise InputError(
            "not a Terraform plan in JSON (expected the output of `terraform show -json PLANFILE`, "
            "with resource_changes)",
            source=doc.source,
        )
    rcs = plan.get("resource_changes") or []
    if not isinstance(rcs, list):
        raise InputError("resource_changes must be a list", source=doc.source, location="resource_changes")
    documents = _policy_documents(plan, doc)
    refs = _config_references(plan)
    out: list[PolicyChange] = []
    for i, rc in enumerate(rcs):
        if not isinstance(rc, dict):
            raise InputError("must be an object", source=doc.source, location=f"resource_changes[{i}]")
        rtype = rc.get("type")
        address = str(rc.get("address", f"resource_changes[{i}]"))
        change = rc.get("change") or {}
        actions = change.get("actions") or []
        if rc.get("mode") == "data" or actions == ["no-op"] or actions == ["read"]:
            continue
        before = change.get("before") if isinstance(change.get("before"), dict) else None
        after = change.get("after") if isinstance(change.get("after"), dict) else None
        unknown: dict[str, Any] = au if isinstance(au := change.get("after_unknown"), dict) else {}
        if "delete" in actions and "create" not in actions:
            after = None
        base: PathKey = ("resource_changes", i, "change")
        cfg_refs = refs.get(address) or refs.get(f"{rtype}.{rc.get('name')}", {})
        ctx = _Ctx(doc, base, address, documents, cfg_refs)
        if rtype in _POLICY_ATTRS:
            attr, kind = _POLICY_ATTRS[rtype]
            b = ctx.side(before, "before", attr, {})
            a = ctx.side(after, "after", attr, unknown)
            if (b is None or b.document is None) and (a is None) and "delete" not in actions:
                continue
            if b is None and a is None:
                continue
            arn, owner = _resource_arn(rtype, after or before or {})
            out.append(
                PolicyChange(
                    subject=address,
                    kind=kind,
                    resource_type=rtype,
                    before=b,
                    after=a,
                    resource_arn=arn,
                    owner_account=owner,
                    attached_to=_attached(rtype, after or before or {}),
                )
            )
        elif rtype == "aws_iam_role":
            arn = (after or before or {}).get("arn")
            trust_b = ctx.side(before, "before", "assume_role_policy", {})
            trust_a = ctx.side(after, "after", "assume_role_policy", unknown)
            if trust_b is not None or trust_a is not None:
                out.append(
                    PolicyChange(
                        subject=f"{address} (trust policy)",
                        kind=PolicyKind.TRUST,
                        resource_type=rtype,
                        before=trust_b,
                        after=trust_a,
                        resource_arn=arn if isinstance(arn, str) else None,
                        owner_account=_account_of(arn),
                        attached_to=_role_ref(after or before),
                    )
                )
            out.extend(_inline_policies(ctx, address, before, after, unknown, _role_ref(after or before)))
            out.extend(_role_managed_arns(ctx, address, before, after))
        elif rtype in _ATTACHMENTS:
            out.extend(_attachment(ctx, address, rtype, before, after, unknown))
    return out


class _Ctx:
    def __init__(
        self,
        doc: Located,
        base: PathKey,
        address: str,
        documents: dict[str, tuple[Any, PathKey]],
        refs: dict[str, list[str]],
    ) -> None:
        self.doc = doc
        self.base = base
        self.address = address
        self.documents = documents
        self.refs = refs

    def loc(self, side: str, *rest: str | int) -> Location:
        path = (*self.base, side, *rest)
        return Location(file=self.doc.source, line=self.doc.line(path), path=_path_text(path))

    def side(
        self, values: dict[str, Any] | None, side: str, attr: str, unknown: dict[str, Any], *rest: str | int
    ) -> PolicyDoc | None:
        """The policy in ``values[attr]`` (None when the resource does not exist on that side)."""
        if values is None:
            return None
        loc = self.loc(side, attr, *rest)
        raw = values.get(attr)
        if raw in (None, ""):
            is_unknown = unknown.get(attr) is True
            if is_unknown:
                resolved = self._from_data_source(attr)
                if resolved is not None:
                    return PolicyDoc(document=resolved[0], location=resolved[1])
                return PolicyDoc(
                    document=None,
                    location=loc,
                    unknowns=(f"{attr} is known only after apply",),
                )
            return None
        return _json_policy(raw, loc)

    def _from_data_source(self, attr: str) -> tuple[dict[str, Any], Location] | None:
        """A policy computed from an aws_iam_policy_document data source the plan has read."""
        for ref in self.refs.get(attr, []):
            name = ref.removesuffix(".json")
            hit = self.documents.get(name)
            if hit is None:
                continue
            value, path = hit
            loc = Location(file=self.doc.source, line=self.doc.line(path), path=_path_text(path))
            if isinstance(value, dict):
                return value, loc
        return None


def _json_policy(raw: Any, loc: Location) -> PolicyDoc:
    if isinstance(raw, dict):
        return PolicyDoc(document=raw, location=loc)
    if not isinstance(raw, str):
        raise InputError(
            f"a policy must be a JSON string, not {type(raw).__name__}", source=loc.file, location=loc.path
        )
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"the policy is not valid JSON ({exc.msg})", source=loc.file, location=loc.path
        ) from None
    if not isinstance(parsed, dict):
        raise InputError("the policy must be a JSON object", source=loc.file, location=loc.path)
    return PolicyDoc(document=parsed, location=loc)


def _inline_policies(
    ctx: _Ctx,
    address: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    unknown: dict[str, Any],
    role: tuple[str, ...],
) -> list[PolicyChange]:
    def by_name(values: dict[str, Any] | None) -> dict[str, int]:
        items = (values or {}).get("inline_policy") or []
        return {str(p.get("name")): i for i, p in enumerate(items) if isinstance(p, dict) and p.get("policy")}

    names_b, names_a = by_name(before), by_name(after)
    out = []
    for name in sorted(set(names_b) | set(names_a)):
        b = a = None
        if name in names_b and before is not None:
            ib = names_b[name]
            b = _json_policy(
                before["inline_policy"][ib]["policy"], ctx.loc("before", "inline_policy", ib, "policy")
            )
        if name in names_a and after is not None:
            ia = names_a[name]
            a = _json_policy(
                after["inline_policy"][ia]["policy"], ctx.loc("after", "inline_policy", ia, "policy")
            )
        out.append(
            PolicyChange(
                subject=f"{address} (inline policy {name})",
                kind=PolicyKind.IDENTITY,
                resource_type="aws_iam_role",
                before=b,
                after=a,
                attached_to=role or (address,),
            )
        )
    return out


def _attachment(
    ctx: _Ctx,
    address: str,
    rtype: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    unknown: dict[str, Any],
) -> list[PolicyChange]:
    def principals(values: dict[str, Any] | None) -> tuple[str, ...]:
        out: list[str] = []
        for key in _ATTACHMENTS[rtype]:
            v = (values or {}).get(key)
            if isinstance(v, str):
                out.append(f"{key}/{v}")
            elif isinstance(v, list):
                out.extend(f"{key.rstrip('s')}/{x}" for x in v if isinstance(x, str))
        return tuple(out)

    arn_b = (before or {}).get("policy_arn")
    arn_a = (after or {}).get("policy_arn")
    if after is not None and arn_a is None and unknown.get("policy_arn") is True:
        refs = ctx.refs.get("policy_arn", [])
        arn_a = f"(policy created by {refs[0].removesuffix('.arn')})" if refs else "(known after apply)"
    b = (
        PolicyDoc(document=None, location=ctx.loc("before", "policy_arn"))
        if before is not None and arn_b
        else None
    )
    a = (
        PolicyDoc(document=None, location=ctx.loc("after", "policy_arn"))
        if after is not None and arn_a
        else None
    )
    if b is not None and a is not None and arn_a == arn_b and principals(before) == principals(after):
        return []
    return [
        PolicyChange(
            subject=f"{address} ({arn_a or arn_b})",
            kind=PolicyKind.ATTACHMENT,
            resource_type=rtype,
            before=b,
            after=a,
            resource_arn=str(arn_a or arn_b),
            attached_to=principals(after or before),
        )
    ]


def _role_managed_arns(
    ctx: _Ctx, address: str, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> list[PolicyChange]:
    """aws_iam_role's ``managed_policy_arns`` (exclusive attachments): each ARN the change adds."""
    old = set((before or {}).get("managed_policy_arns") or [])
    new = (after or {}).get("managed_policy_arns") or []
    out = []
    for i, arn in enumerate(new):
        if not isinstance(arn, str) or arn in old:
            continue
        out.append(
            PolicyChange(
                subject=f"{address} (managed policy {arn})",
                kind=PolicyKind.ATTACHMENT,
                resource_type="aws_iam_role",
                before=None,
                after=PolicyDoc(document=None, location=ctx.loc("after", "managed_policy_arns", i)),
                resource_arn=arn,
                attached_to=_role_ref(after),
            )
        )
    return out


def _role_ref(values: dict[str, Any] | None) -> tuple[str, ...]:
    name = (values or {}).get("name")
    return (f"role/{name}",) if isinstance(name, str) and name else ()


def _attached(rtype: str, values: dict[str, Any]) -> tuple[str, ...]:
    for key in ("role", "user", "group"):
        if rtype == f"aws_iam_{key}_policy" and isinstance(values.get(key), str):
            return (f"{key}/{values[key]}",)
    return ()


def _account_of(arn: Any) -> str | None:
    if isinstance(arn, str) and arn.startswith("arn:"):
        parts = arn.split(":", 5)
        if len(parts) == 6 and parts[4].isdigit():
            return parts[4]
    return None


def _resource_arn(rtype: str, values: dict[str, Any]) -> tuple[str | None, str | None]:
    """The protected resource's ARN and owner account when the plan knows them."""
    if rtype == "aws_s3_bucket_policy":
        bucket = values.get("bucket")
        # S3 bucket ARNs carry no account: the owner is unknown from the plan alone.
        return (f"arn:aws:s3:::{bucket}" if isinstance(bucket, str) else None), None
    if rtype == "aws_sqs_queue_policy":
        url = values.get("queue_url")
        if isinstance(url, str) and url.count("/") >= 4:
            # https://sqs.<region>.amazonaws.com/<account>/<name>
            host, account, name = url.split("/")[2], url.split("/")[3], url.split("/")[4]
            region = host.split(".")[1] if host.count(".") >= 2 else "*"
            return f"arn:aws:sqs:{region}:{account}:{name}", account
        return None, None
    if rtype == "aws_sns_topic_policy":
        arn = values.get("arn")
        return (arn if isinstance(arn, str) else None), _account_of(arn)
    arn = values.get("arn")
    return (arn if isinstance(arn, str) else None), _account_of(arn)


def _policy_documents(plan: dict[str, Any], doc: Located) -> dict[str, tuple[Any, PathKey]]:
    """aws_iam_policy_document data sources the plan has read: address -> (document, path)."""
    out: dict[str, tuple[Any, PathKey]] = {}
    for top in ("prior_state", "planned_values"):
        section = plan.get(top)
        if not isinstance(section, dict):
            continue
        base: PathKey = (top,) if top == "planned_values" else (top, "values")
        module = (
            section.get("root_module")
            if top == "planned_values"
            else (section.get("values") or {}).get("root_module")
        )
        _walk_module(module, (*base, "root_module"), out)
    for i, rc in enumerate(plan.get("resource_changes") or []):
        if isinstance(rc, dict) and rc.get("type") == "aws_iam_policy_document":
            after = (rc.get("change") or {}).get("after") or {}
            doc_value = _document_value(after)
            if doc_value is not None:
                out.setdefault(
                    str(rc.get("address")), (doc_value, ("resource_changes", i, "change", "after", "json"))
                )
    return out


def _walk_module(module: Any, path: PathKey, out: dict[str, tuple[Any, PathKey]]) -> None:
    if not isinstance(module, dict):
        return
    for j, res in enumerate(module.get("resources") or []):
        if isinstance(res, dict) and res.get("type") == "aws_iam_policy_document":
            value = _document_value(res.get("values") or {})
            if value is not None:
                out.setdefault(str(res.get("address")), (value, (*path, "resources", j, "values", "json")))
    for k, child in enumerate(module.get("child_modules") or []):
        _walk_module(child, (*path, "child_modules", k), out)


def _document_value(values: dict[str, Any]) -> dict[str, Any] | None:
    text = values.get("json")
    if isinstance(text, str) and text:
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def _config_references(plan: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """address -> attribute -> the references its configuration expression makes."""
    out: dict[str, dict[str, list[str]]] = {}
    root = (plan.get("configuration") or {}).get("root_module") or {}
    for res in root.get("resources") or []:
        if not isinstance(res, dict):
            continue
        exprs = res.get("expressions") or {}
        refs = {
            attr: [r for r in (e.get("references") or []) if isinstance(r, str)]
            for attr, e in exprs.items()
            if isinstance(e, dict)
        }
        out[str(res.get("address"))] = refs
    return out


def _path_text(path: PathKey) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out
