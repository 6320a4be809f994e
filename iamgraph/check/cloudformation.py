"""Policies in a CloudFormation template (JSON or YAML), with the intrinsic functions resolved offline.

What can be resolved without a stack: ``Ref`` to a parameter with a ``Default`` (or a value given
in the config), pseudo parameters, ``Fn::Sub``/``Fn::Join``/``Fn::Select``/``Fn::Split`` over known
values, ``Fn::FindInMap`` over literal mappings. What cannot: ``Ref`` to a resource (its physical
id), ``Fn::GetAtt``, ``Fn::ImportValue``, ``Fn::If`` (conditions depend on deploy-time values).
Those become a visible placeholder and are listed as unknowns: the gate never pretends to know.
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/pseudo-parameter-reference.html
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from iamgraph.check.locate import Located, PathKey
from iamgraph.check.types import Location, PolicyChange, PolicyDoc, PolicyKind
from iamgraph.errors import InputError

# The stack's own account when nobody says which: same-account vs. other-account reasoning only
# needs it to be the owner's, not its value. Reported as an assumption.
STAND_IN_ACCOUNT = "000000000000"
STAND_IN_REGION = "us-east-1"

_NO_VALUE = object()
_NAME_PROPS = {"AWS::IAM::Role": "RoleName", "AWS::IAM::User": "UserName", "AWS::IAM::Group": "GroupName"}
_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")

# type -> [(property path to the document, kind)]
_DOCS: dict[str, tuple[tuple[str, PolicyKind], ...]] = {
    "AWS::IAM::Policy": (("PolicyDocument", PolicyKind.IDENTITY),),
    "AWS::IAM::ManagedPolicy": (("PolicyDocument", PolicyKind.IDENTITY),),
    "AWS::IAM::RolePolicy": (("PolicyDocument", PolicyKind.IDENTITY),),
    "AWS::IAM::UserPolicy": (("PolicyDocument", PolicyKind.IDENTITY),),
    "AWS::IAM::GroupPolicy": (("PolicyDocument", PolicyKind.IDENTITY),),
    "AWS::IAM::Role": (("AssumeRolePolicyDocument", PolicyKind.TRUST),),
    "AWS::S3::BucketPolicy": (("PolicyDocument", PolicyKind.RESOURCE),),
    "AWS::KMS::Key": (("KeyPolicy", PolicyKind.RESOURCE),),
    "AWS::SQS::QueuePolicy": (("PolicyDocument", PolicyKind.RESOURCE),),
    "AWS::SNS::TopicPolicy": (("PolicyDocument", PolicyKind.RESOURCE),),
}


class _Resolver:
    def __init__(
        self,
        template: dict[str, Any],
        source: str,
        params: Mapping[str, str],
        account: str | None,
        region: str | None,
    ) -> None:
        self.source = source
        self.account = account or STAND_IN_ACCOUNT
        self.region = region or STAND_IN_REGION
        self.assumptions: set[str] = set()
        self.known_account = account is not None
        self.known_region = region is not None
        self.params: dict[str, Any] = {}
        self.param_unknown: set[str] = set()
        for name, spec in (template.get("Parameters") or {}).items():
            if name in params:
                self.params[name] = params[name]
            elif isinstance(spec, dict) and "Default" in spec:
                self.params[name] = spec["Default"]
            else:
                self.param_unknown.add(name)
        self.resources = set((template.get("Resources") or {}).keys())
        self.specs: dict[str, Any] = dict(template.get("Resources") or {})
        self.mappings = template.get("Mappings") or {}
        self.unknowns: list[str] = []

    def pseudo(self, name: str) -> Any:
        if name == "AWS::AccountId":
            if not self.known_account:
                self.assumptions.add(f"AWS::AccountId stands for the stack's account ({STAND_IN_ACCOUNT})")
            return self.account
        if name == "AWS::Region":
            if not self.known_region:
                self.assumptions.add(f"AWS::Region assumed {STAND_IN_REGION}")
            return self.region
        if name == "AWS::Partition":
            return "aws"
        if name == "AWS::URLSuffix":
            return "amazonaws.com"
        if name == "AWS::NoValue":
            return _NO_VALUE
        return self.unknown(f"{name} (known only at deploy time)")

    def unknown(self, what: str) -> str:
        self.unknowns.append(what)
        # No ':' or spaces inside, so an ARN holding it still splits into its parts.
        return f"{{{{unresolved-{len(self.unknowns)}}}}}"

    def ref(self, name: Any) -> Any:
        if not isinstance(name, str):
            return self.unknown(f"Ref to {name!r}")
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.params:
            return self.params[name]
        if name in self.param_unknown:
            return self.unknown(f"parameter {name} has no Default")
        if name in self.resources:
            # Ref of an IAM role, user or group is its name: known when the template sets it.
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-iam-role.html#aws-resource-iam-role-return-values
            spec = self.specs.get(name) or {}
            prop = _NAME_PROPS.get(str(spec.get("Type")))
            value = (spec.get("Properties") or {}).get(prop) if prop else None
            if isinstance(value, str):
                return value
            return self.unknown(f"Ref {name} (the resource's physical id)")
        raise InputError(f"Ref to {name!r}, which is neither a parameter nor a resource", source=self.source)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            out = [self.resolve(v) for v in value]
            return [v for v in out if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((fn, arg),) = value.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Fn::Sub":
                return self.sub(arg)
            if fn == "Fn::Join":
                return self.join(arg)
            if fn == "Fn::Select":
                return self.select(arg)
            if fn == "Fn::Split":
                return self.split(arg)
            if fn == "Fn::FindInMap":
                return self.find_in_map(arg)
            if fn == "Fn::GetAtt":
                what = ".".join(map(str, arg)) if isinstance(arg, list) else str(arg)
                return self.unknown(f"Fn::GetAtt {what}")
            if fn.startswith("Fn::"):
                return self.unknown(f"{fn} (not resolved offline)")
        out_d = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in out_d.items() if v is not _NO_VALUE}

    def sub(self, arg: Any) -> Any:
        local: dict[str, Any] = {}
        if isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], dict):
            text = arg[0]
            local = {k: self.resolve(v) for k, v in arg[1].items()}
        else:
            text = arg
        if not isinstance(text, str):
            return self.unknown("Fn::Sub with a non-string template")

        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name in local:
                return str(local[name])
            if "." in name and not name.startswith("AWS::"):
                return self.unknown(f"Fn::GetAtt {name}")
            v = self.ref(name)
            return str(v) if v is not _NO_VALUE else ""

        # "${!Literal}" is a literal "${Literal}": AWS IAM policy variables are written that way.
        resolved = _SUB_VAR.sub(repl, text)
        return resolved.replace("${!", "${")

    def join(self, arg: Any) -> Any:
        if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str)):
            return self.unknown("Fn::Join with a malformed argument")
        items = self.resolve(arg[1])
        if not isinstance(items, list):
            return self.unknown("Fn::Join over a value not known offline")
        return arg[0].join(str(i) for i in items)

    def select(self, arg: Any) -> Any:
        if not (isinstance(arg, list) and len(arg) == 2):
            return self.unknown("Fn::Select with a malformed argument")
        index, items = self.resolve(arg[0]), self.resolve(arg[1])
        try:
            return items[int(index)]
        except (TypeError, ValueError, IndexError, KeyError):
            return self.unknown("Fn::Select over a value not known offline")

    def split(self, arg: Any) -> Any:
        if not (isinstance(arg, list) and len(arg) == 2):
            return self.unknown("Fn::Split with a malformed argument")
        sep, text = self.resolve(arg[0]), self.resolve(arg[1])
        if isinstance(sep, str) and isinstance(text, str) and "{{unresolved" not in text:
            return text.split(sep)
        return self.unknown("Fn::Split over a value not known offline")

    def find_in_map(self, arg: Any) -> Any:
        if not (isinstance(arg, list) and len(arg) == 3):
            return self.unknown("Fn::FindInMap with a malformed argument")
        keys = [self.resolve(a) for a in arg]
        try:
            return self.mappings[keys[0]][keys[1]][keys[2]]
        except (KeyError, TypeError):
            return self.unknown(f"Fn::FindInMap {keys!r}")


def changes_from_template(
    doc: Located,
    *,
    parameters: Mapping[str, str] | None = None,
    account: str | None = None,
    region: str | None = None,
) -> tuple[list[PolicyChange], tuple[str, ...]]:
    """Policy changes (all new: a template is the after side) and the assumptions made."""
    template = doc.value
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise InputError("not a CloudFormation template (no Resources section)", source=doc.source)
    res = _Resolver(template, doc.source, parameters or {}, account, region)
    out: list[PolicyChange] = []
    for logical, spec in template["Resources"].items():
        if not isinstance(spec, dict):
            raise InputError("must be an object", source=doc.source, location=f"Resources.{logical}")
        rtype = spec.get("Type")
        props = spec.get("Properties") or {}
        if not isinstance(rtype, str) or not isinstance(props, dict):
            continue
        base: PathKey = ("Resources", logical, "Properties")
        owner = res.account
        for prop, kind in _DOCS.get(rtype, ()):
            if prop in props:
                arn = _protected_arn(rtype, logical, props, res)
                out.append(
                    PolicyChange(
                        subject=f"{logical} ({rtype}{' trust policy' if kind is PolicyKind.TRUST else ''})",
                        kind=kind,
                        resource_type=rtype,
                        before=None,
                        after=_doc(doc, res, props[prop], (*base, prop)),
                        resource_arn=arn,
                        owner_account=owner,
                        attached_to=_targets(props, res)
                        if kind is not PolicyKind.TRUST
                        else (f"role/{res.resolve(props.get('RoleName', logical))}",),
                    )
                )
        if rtype in ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
            for i, pol in enumerate(props.get("Policies") or []):
                if not isinstance(pol, dict) or "PolicyDocument" not in pol:
                    continue
                name = res.resolve(pol.get("PolicyName", f"Policies[{i}]"))
                out.append(
                    PolicyChange(
                        subject=f"{logical} (inline policy {name})",
                        kind=PolicyKind.IDENTITY,
                        resource_type=rtype,
                        before=None,
                        after=_doc(doc, res, pol["PolicyDocument"], (*base, "Policies", i, "PolicyDocument")),
                        owner_account=owner,
                        attached_to=(_self_ref(rtype, logical, props, res),),
                    )
                )
            managed = props.get("ManagedPolicyArns") or []
            for i, raw_arn in enumerate(managed if isinstance(managed, list) else []):
                res.unknowns = []
                arn = res.resolve(raw_arn)
                path = (*base, "ManagedPolicyArns", i)
                loc = Location(file=doc.source, line=doc.line(path), path=_path_text(path))
                out.append(
                    PolicyChange(
                        subject=f"{logical} (managed policy {arn})",
                        kind=PolicyKind.ATTACHMENT,
                        resource_type=rtype,
                        before=None,
                        after=PolicyDoc(document=None, location=loc, unknowns=tuple(res.unknowns)),
                        resource_arn=str(arn),
                        owner_account=owner,
                        attached_to=(_self_ref(rtype, logical, props, res),),
                    )
                )
    return out, tuple(sorted(res.assumptions))


def _doc(located: Located, res: _Resolver, raw: Any, path: PathKey) -> PolicyDoc:
    res.unknowns = []
    value = res.resolve(raw)
    loc = Location(file=located.source, line=located.line(path), path=_path_text(path))
    if isinstance(value, str):
        # A policy given as a JSON string (allowed for some properties) has no inner lines.
        import json

        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"the policy is not valid JSON ({exc.msg})", source=located.source, location=loc.path
            ) from None
    if not isinstance(value, dict):
        return PolicyDoc(document=None, location=loc, unknowns=tuple(res.unknowns) or ("not an object",))
    statements = raw.get("Statement") if isinstance(raw, dict) else None
    lines: tuple[int | None, ...] = ()
    if isinstance(statements, list):
        lines = tuple(located.line((*path, "Statement", i)) for i in range(len(statements)))
    elif isinstance(statements, dict):
        lines = (located.line((*path, "Statement")),)
    return PolicyDoc(document=value, location=loc, statement_lines=lines, unknowns=tuple(res.unknowns))


def _protected_arn(rtype: str, logical: str, props: dict[str, Any], res: _Resolver) -> str | None:
    if rtype == "AWS::S3::BucketPolicy":
        bucket = res.resolve(props.get("Bucket"))
        return f"arn:aws:s3:::{bucket}" if isinstance(bucket, str) else None
    if rtype == "AWS::SNS::TopicPolicy":
        topics = res.resolve(props.get("Topics"))
        return topics[0] if isinstance(topics, list) and topics and isinstance(topics[0], str) else None
    if rtype == "AWS::SQS::QueuePolicy":
        queues = res.resolve(props.get("Queues"))
        if isinstance(queues, list) and queues and isinstance(queues[0], str) and queues[0].count("/") >= 4:
            parts = queues[0].split("/")
            return f"arn:aws:sqs:{res.region}:{parts[3]}:{parts[4]}"
        return None
    if rtype == "AWS::KMS::Key":
        return f"arn:aws:kms:{res.region}:{res.account}:key/{logical}"
    if rtype == "AWS::IAM::Role":
        name = props.get("RoleName")
        rname = res.resolve(name) if name is not None else logical
        return f"arn:aws:iam::{res.account}:role{props.get('Path', '/')}{rname}"
    return None


def _self_ref(rtype: str, logical: str, props: dict[str, Any], res: _Resolver) -> str:
    kind = rtype.rsplit("::", 1)[-1].lower()
    name = props.get(_NAME_PROPS.get(rtype, ""))
    return f"{kind}/{res.resolve(name) if name is not None else logical}"


def _targets(props: dict[str, Any], res: _Resolver) -> tuple[str, ...]:
    out: list[str] = []
    for key in ("Roles", "Users", "Groups"):
        for v in props.get(key) or []:
            r = res.resolve(v)
            out.append(f"{key[:-1].lower()}/{r}")
    for key in ("RoleName", "UserName", "GroupName"):
        if key in props:
            out.append(f"{key[:-4].lower()}/{res.resolve(props[key])}")
    return tuple(out)


def _path_text(path: PathKey) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out
