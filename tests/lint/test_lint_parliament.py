"""parliament findings through iamgraph.lint.

Expected finding ids come from parliament's documentation (its README examples and the titles in
its config.yaml), and the catalog facts from the Service Authorization Reference.
"""

from __future__ import annotations

import json

import parliament
import pytest

from iamgraph.catalog import get_catalog
from iamgraph.lint import LintFinding, LintSeverity, lint, lint_policy, new_findings
from iamgraph.model.policy import parse_policy


def _doc(*statements: dict[str, object]) -> dict[str, object]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _issues(findings: tuple[LintFinding, ...]) -> set[str]:
    return {f.issue for f in findings}


def _parliament_issues(doc: dict[str, object]) -> set[str]:
    return {f.issue for f in parliament.analyze_policy_string(json.dumps(doc)).findings}


def test_s3_star_on_star_is_resource_star() -> None:
    findings = lint_policy(_doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}))
    assert _issues(findings) == {"RESOURCE_STAR"}
    (f,) = findings
    assert f.severity is LintSeverity.LOW
    assert f.title == "Unnecessary use of Resource *"
    assert "s3:GetObject" in f.detail


def test_readme_example_object_action_on_a_bucket() -> None:
    # parliament's README: s3:GetObject on arn:aws:s3:::bucket1 -> "MEDIUM - No resources match
    # for the given action" (RESOURCE_MISMATCH): GetObject needs an object path.
    text = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": ["arn:aws:s3:::bucket1"],
            },
        },
        indent=4,
    )
    findings = lint_policy(text)
    assert _issues(findings) == {"RESOURCE_MISMATCH"}
    assert findings[0].severity is LintSeverity.MEDIUM


def test_readme_override_example_unknown_action_and_mismatch() -> None:
    # parliament's README "Custom config file" example: two findings, Unknown action s3:abc and
    # No resources match for the given action.
    doc = {
        "Version": "2012-10-17",
        "Id": "123",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:abc", "Resource": "*"},
            {"Effect": "Allow", "Action": ["s3:*", "ec2:*"], "Resource": "arn:aws:s3:::test/*"},
        ],
    }
    findings = lint_policy(json.dumps(doc, indent=4))
    assert _issues(findings) == {"UNKNOWN_ACTION", "RESOURCE_MISMATCH"}
    unknown = [f for f in findings if f.issue == "UNKNOWN_ACTION"]
    assert [f.location for f in unknown] == ["s3:abc"]
    assert unknown[0].line == 7  # line of "s3:abc" in the 4-space indented text


def test_action_known_to_catalog_but_not_parliament_is_not_unknown() -> None:
    cat = get_catalog()
    # account:PutAccountName (Account Management) and bedrock-agentcore (a service parliament's
    # data predates) are in the reference; parliament's copy lacks them.
    newer_action, newer_service = "account:PutAccountName", "bedrock-agentcore:InvokeAgentRuntime"
    assert cat.is_known(newer_action) and cat.is_known(newer_service)
    doc = _doc({"Effect": "Allow", "Action": [newer_action, newer_service, "s3:GetObject"], "Resource": "*"})
    # Precondition: parliament alone calls them unknown, and then checks nothing else.
    assert _parliament_issues(doc) == {"UNKNOWN_ACTION", "UNKNOWN_PREFIX"}
    result = lint(doc)
    assert not _issues(result.findings) & {"UNKNOWN_ACTION", "UNKNOWN_PREFIX"}
    # The rest of the statement was still analysed: Resource * on s3:GetObject.
    assert _issues(result.findings) == {"RESOURCE_STAR"}
    assert set(result.not_checked) == {newer_action, newer_service}


def test_wildcard_on_a_newer_service_is_not_unknown() -> None:
    doc = _doc({"Effect": "Allow", "Action": "bedrock-agentcore:Get*", "Resource": "*"})
    assert "UNKNOWN_PREFIX" in _parliament_issues(doc)
    result = lint(doc)
    assert result.findings == ()
    assert result.not_checked == ("bedrock-agentcore:Get*",)


def test_truly_unknown_actions_stay_reported() -> None:
    doc = _doc(
        {
            "Effect": "Allow",
            "Action": ["s3:NoSuchThing", "nosvc:Foo", "account:PutAccountName"],
            "Resource": "*",
        }
    )
    findings = lint_policy(doc)
    by_issue = {(f.issue, f.location) for f in findings}
    assert ("UNKNOWN_ACTION", "s3:NoSuchThing") in by_issue
    assert ("UNKNOWN_PREFIX", "nosvc:Foo") in by_issue
    assert not any(f.location == "account:PutAccountName" for f in findings)


def test_condition_key_known_to_catalog_is_not_unknown() -> None:
    # S3 table: PutObject supports s3:object-lock-event-hold (newer than parliament's data).
    cat = get_catalog()
    info = cat.action("s3:PutObject")
    assert info is not None and "s3:object-lock-event-hold" in {k.lower() for k in info.condition_keys}
    doc = _doc(
        {
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": "arn:aws:s3:::b/*",
            "Condition": {"Bool": {"s3:object-lock-event-hold": "true"}},
        }
    )
    assert "UNKNOWN_CONDITION_FOR_ACTION" in _parliament_issues(doc)
    assert "UNKNOWN_CONDITION_FOR_ACTION" not in _issues(lint_policy(doc))
    bogus = _doc(
        {
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": "arn:aws:s3:::b/*",
            "Condition": {"StringEquals": {"s3:NoSuchConditionKey": "x"}},
        }
    )
    assert "UNKNOWN_CONDITION_FOR_ACTION" in _issues(lint_policy(bogus))


@pytest.mark.parametrize(
    ("text", "issue"),
    [
        ("[1, 2]", "MALFORMED_JSON"),
        ('{"Statement": ', "MALFORMED_JSON"),
        (b"\xff\xfe", "MALFORMED_JSON"),
        ('{"Statement": 5}', "EXCEPTION"),  # parliament raises on this one
    ],
)
def test_documents_parliament_cannot_analyse_give_a_finding(text: str | bytes, issue: str) -> None:
    findings = lint_policy(text)
    assert issue in _issues(findings)
    assert all(f.severity is LintSeverity.CRITICAL for f in findings if f.issue == issue)


def test_unserialisable_mapping_gives_a_finding() -> None:
    findings = lint_policy({"Version": "2012-10-17", "Statement": [{"Effect": {1, 2}}]})
    assert _issues(findings) == {"MALFORMED_JSON"}


def test_parsed_policy_model_is_accepted() -> None:
    policy = parse_policy(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    )
    assert _issues(lint_policy(policy)) == {"RESOURCE_STAR"}


def test_new_findings() -> None:
    before = _doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"})
    assert lint_policy(before) == ()
    after = _doc(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"},
    )
    added = new_findings(before, after)
    assert _issues(added) == {"RESOURCE_STAR"}
    assert new_findings(after, before) == ()
    assert new_findings(after, after) == ()


def test_new_findings_ignore_moved_lines_but_count_repeats() -> None:
    star = {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}
    ok = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}
    before = json.dumps(_doc(star, ok))
    after = json.dumps(_doc(ok, star), indent=8)  # same findings, other lines
    assert new_findings(before, after) == ()
    # A finding without a list of items is counted: a second occurrence is new.
    bad = {"Effect": "Allow", "Action": "s3:abc", "Resource": "*"}
    once, twice = _doc(bad, ok), _doc(bad, ok, dict(bad))
    assert [(f.issue, f.location) for f in new_findings(once, twice)] == [("UNKNOWN_ACTION", "s3:abc")]
    # The same action on Resource * granted twice adds no access: covered by the first finding.
    assert new_findings(_doc(star, ok), _doc(star, ok, dict(star))) == ()


def test_narrowing_a_wildcard_adds_no_findings() -> None:
    # A trimmed policy keeps Resource * but lists fewer actions: parliament's RESOURCE_STAR detail
    # changes (it lists the actions) yet the finding is narrower, not new.
    broad = _doc({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    narrow = _doc({"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "*"})
    assert _issues(lint_policy(narrow)) == {"RESOURCE_STAR"}
    assert new_findings(broad, narrow) == ()
    # The other way round the extra actions are new.
    widened = new_findings(narrow, broad)
    assert _issues(widened) == {"RESOURCE_STAR"}
    assert "s3:DeleteBucket" in widened[0].items
    # A different service under Resource * is not covered by the s3 finding.
    other = _doc({"Effect": "Allow", "Action": ["s3:GetObject", "iam:PassRole"], "Resource": "*"})
    assert _issues(new_findings(broad, other)) == {"RESOURCE_STAR"}


def test_community_auditor_findings_carry_their_titles() -> None:
    # parliament's community auditors flag permissions-management actions (its config_override.yaml:
    # "Permissions management actions", MEDIUM); iam:CreatePolicyVersion is Permissions management.
    doc = _doc({"Effect": "Allow", "Action": "iam:CreatePolicyVersion", "Resource": "*"})
    assert "PERMISSIONS_MANAGEMENT_ACTIONS" not in _issues(lint_policy(doc))
    found = [
        f
        for f in lint_policy(doc, include_community_auditors=True)
        if f.issue == "PERMISSIONS_MANAGEMENT_ACTIONS"
    ]
    assert len(found) == 1
    assert found[0].title == "Permissions management actions" and found[0].severity is LintSeverity.MEDIUM
