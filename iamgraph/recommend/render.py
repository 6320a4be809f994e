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


def _owner(p: PolicyProposal) -> str:
    """The identity an inline policy belongs to (ARN), from the engine's ``<owner ARN>:inline/<name>`` id."""
    return p.policy_id.rsplit(":inline/", 1)[0]


def removal(p: PolicyProposal) -> str:
    """What to remove for a proposal that deletes the policy (one line, no trailing newline)."""
    if p.kind is PolicyKind.AWS_MANAGED:
        return (f"detach the AWS managed policy {p.policy_id} from {', '.join(p.principals)}: nothing it grants was "
                "used in the window; nothing replaces it")
    if p.kind in _INLINE_TYPES:
        return f"delete the inline policy {p.name} of {_owner(p)}: nothing it grants was used in the window"
    return (f"delete the customer managed policy {p.policy_id} (detach it from {', '.join(p.principals)} first): "
            "nothing it grants was used in the window")


def placement(p: PolicyProposal) -> str | None:
    """Where an inline policy's proposal goes when it is to be created as a managed policy instead (one line)."""
    if p.emit_as is None:
        return None
    return (f"create as a customer managed policy attached to {_owner(p)}, in place of the inline policy {p.name} "
            "(the identity's inline policies together would exceed the inline quota)")


def terraform(p: PolicyProposal) -> str:
    """One ``data "aws_iam_policy_document"`` per proposed document
    (https://registry.terraform.io/providers/hashicorp/aws/latest/docs/data-sources/iam_policy_document); for a
    proposal that deletes the policy, comments saying what to remove (a file of comments only is valid HCL)."""
    if not p.proposed:
        return f"# iamgraph: {removal(p)}.\n# Remove the resource that defines it, and its attachments.\n"
    blocks: list[str] = []
    where = placement(p)
    if where is not None:
        blocks.append(f"# iamgraph: {where}.")
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


_MANAGED_OWNER_KEYS = {PolicyKind.ROLE_INLINE: "Roles", PolicyKind.USER_INLINE: "Users",
                       PolicyKind.GROUP_INLINE: "Groups"}


def cloudformation(p: PolicyProposal) -> str:
    """A CloudFormation template (JSON): ``AWS::IAM::ManagedPolicy`` per proposed document for managed policies
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-iam-managedpolicy.html), and for
    an inline policy to be created as a managed one (attached to its identity through ``Roles``/``Users``/``Groups``);
    ``AWS::IAM::RolePolicy``/``UserPolicy``/``GroupPolicy`` for inline ones.

    A proposal that deletes the policy is still a valid template: a template needs at least one resource
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/resources-section-structure.html), so it holds
    one ``AWS::CloudFormation::WaitConditionHandle`` (creates nothing billable), and its ``Description`` and
    ``Metadata`` say what to remove."""
    head: dict[str, Any] = {"AWSTemplateFormatVersion": "2010-09-09"}
    if not p.proposed:
        return json.dumps({
            **head,
            "Description": f"iamgraph: {removal(p)}"[:1024],
            "Metadata": {"iamgraph": {"remove": p.policy_id, "kind": p.kind.value, "principals": list(p.principals),
                                      "what": "remove the resource that defines this policy, and its attachments"}},
            "Resources": {"NothingToCreate": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        }, indent=2) + "\n"
    resources: dict[str, Any] = {}
    for name, doc in zip(p.proposed_names, p.proposed, strict=True):
        logical = _ident(name).replace("_", "")
        owner = _owner(p).rsplit("/", 1)[-1]
        if p.kind in _INLINE_TYPES and p.emit_as is None:
            rtype, owner_key = _INLINE_TYPES[p.kind]
            props: dict[str, Any] = {"PolicyName": name, owner_key: owner, "PolicyDocument": doc}
        elif p.kind in _INLINE_TYPES:
            rtype, props = "AWS::IAM::ManagedPolicy", {"ManagedPolicyName": name, "PolicyDocument": doc,
                                                       _MANAGED_OWNER_KEYS[p.kind]: [owner]}
        else:
            rtype, props = "AWS::IAM::ManagedPolicy", {"ManagedPolicyName": name, "PolicyDocument": doc}
        resources[logical] = {"Type": rtype, "Properties": props}
    where = placement(p)
    if where is not None:
        head["Description"] = f"iamgraph: {where}"[:1024]
    return json.dumps({**head, "Resources": resources}, indent=2) + "\n"
