"""Text forms of a proposal: policy JSON, a unified diff against the current policy, Terraform
``aws_iam_policy_document`` data sources and CloudFormation ``AWS::IAM::ManagedPolicy`` snippets."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from typing import Any

from iamgraph.recommend.recommender import PolicyKind, PolicyProposal


def policy_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def unified_diff(p: PolicyProposal) -> str:
    """The current document against the proposal (all its parts, in order), as a unified diff."""
    before = policy_json(p.original).splitlines(keepends=True)
    after: list[str] = []
    for name, doc in zip(p.proposed_names, p.proposed, strict=True):
        if len(p.proposed) > 1:
            after.append(f"// {name}\n")
        after.extend(policy_json(doc).splitlines(keepends=True))
    return "".join(difflib.unified_diff(before, after, fromfile=f"current/{p.name}",
                                        tofile=f"proposed/{p.name}"))


def _ident(name: str) -> str:
    out = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return out if out[:1].isalpha() or out[:1] == "_" else "p_" + out


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _hcl(values: list[Any]) -> str:
    return "[" + ", ".join(json.dumps(str(v)) for v in values) + "]"


def terraform(p: PolicyProposal) -> str:
    """One ``data "aws_iam_policy_document"`` per proposed document
    (https://registry.terraform.io/providers/hashicorp/aws/latest/docs/data-sources/iam_policy_document)."""
    blocks: list[str] = []
    for name, doc in zip(p.proposed_names, p.proposed, strict=True):
        lines = [f'data "aws_iam_policy_document" "{_ident(name)}" {{']
        for st in _list(doc.get("Statement")):
            lines.append("  statement {")
            if "Sid" in st:
                lines.append(f"    sid    = {json.dumps(st['Sid'])}")
            lines.append(f"    effect = {json.dumps(st.get('Effect', 'Allow'))}")
            for key, attr in (("Action", "actions"), ("NotAction", "not_actions"), ("Resource", "resources"),
                              ("NotResource", "not_resources")):
                if key in st:
                    lines.append(f"    {attr} = {_hcl(_list(st[key]))}")
            for op, keys in (st.get("Condition") or {}).items():
                for key, values in keys.items():
                    lines += ["    condition {", f"      test     = {json.dumps(op)}",
                              f"      variable = {json.dumps(key)}", f"      values   = {_hcl(_list(values))}",
                              "    }"]
            lines.append("  }")
        lines.append("}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + ("\n" if blocks else "")


_INLINE_TYPES = {
    PolicyKind.ROLE_INLINE: ("AWS::IAM::RolePolicy", "RoleName"),
    PolicyKind.USER_INLINE: ("AWS::IAM::UserPolicy", "UserName"),
    PolicyKind.GROUP_INLINE: ("AWS::IAM::GroupPolicy", "GroupName"),
}


def cloudformation(p: PolicyProposal) -> str:
    """A CloudFormation template fragment (JSON): ``AWS::IAM::ManagedPolicy`` per proposed document for managed
    policies (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-iam-managedpolicy.html),
    ``AWS::IAM::RolePolicy``/``UserPolicy``/``GroupPolicy`` for inline ones."""
    resources: dict[str, Any] = {}
    for name, doc in zip(p.proposed_names, p.proposed, strict=True):
        logical = _ident(name).replace("_", "")
        if p.kind in _INLINE_TYPES:
            rtype, owner_key = _INLINE_TYPES[p.kind]
            owner = p.policy_id.rsplit(":inline/", 1)[0].rsplit("/", 1)[-1]
            props: dict[str, Any] = {"PolicyName": name, owner_key: owner, "PolicyDocument": doc}
        else:
            rtype, props = "AWS::IAM::ManagedPolicy", {"ManagedPolicyName": name, "PolicyDocument": doc}
        resources[logical] = {"Type": rtype, "Properties": props}
    return json.dumps({"Resources": resources}, indent=2) + "\n"
