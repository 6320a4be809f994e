"""Malformed inputs fail with a message naming the file and the JSON path; the CLI exits 2 with it.

The document below follows the response shape in the IAM API reference
(https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetAccountAuthorizationDetails.html);
each case breaks one thing.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import botocore.session
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from iamgraph.cli import app
from iamgraph.collect import files
from iamgraph.collect.files import load_paths
from iamgraph.errors import InputError

A = "111122223333"
B = "444455556666"
IDENTITY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def doc(account: str = A) -> dict[str, Any]:
    return {
        "UserDetailList": [
            {
                "Path": "/",
                "UserName": "u",
                "UserId": "AIDAEXAMPLE",
                "Arn": f"arn:aws:iam::{account}:user/u",
                "CreateDate": "2024-01-01T00:00:00+00:00",
                "UserPolicyList": [{"PolicyName": "inline", "PolicyDocument": IDENTITY}],
                "GroupList": [],
                "AttachedManagedPolicies": [],
                "Tags": [{"Key": "team", "Value": "a"}],
            }
        ],
        "GroupDetailList": [],
        "RoleDetailList": [
            {
                "Path": "/",
                "RoleName": "r",
                "RoleId": "AROAEXAMPLE",
                "Arn": f"arn:aws:iam::{account}:role/r",
                "CreateDate": "2024-01-01T00:00:00+00:00",
                "AssumeRolePolicyDocument": TRUST,
                "InstanceProfileList": [],
                "RolePolicyList": [],
                "AttachedManagedPolicies": [
                    {"PolicyName": "ReadOnlyAccess", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}
                ],
                "Tags": [],
                "RoleLastUsed": {},
            }
        ],
        "Policies": [
            {
                "PolicyName": "cp",
                "PolicyId": "ANPAEXAMPLE",
                "Arn": f"arn:aws:iam::{account}:policy/cp",
                "Path": "/",
                "DefaultVersionId": "v1",
                "AttachmentCount": 0,
                "PermissionsBoundaryUsageCount": 0,
                "IsAttachable": True,
                "CreateDate": "2024-01-01T00:00:00+00:00",
                "UpdateDate": "2024-01-01T00:00:00+00:00",
                "PolicyVersionList": [
                    {
                        "Document": IDENTITY,
                        "VersionId": "v1",
                        "IsDefaultVersion": True,
                        "CreateDate": "2024-01-01",
                    }
                ],
            }
        ],
        "IsTruncated": False,
    }


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(d: dict[str, Any]) -> None:
        parts = path.split("/")
        target: Any = d
        for p in parts[:-1]:
            target = target[int(p)] if p.isdigit() else target[p]
        last = parts[-1]
        if last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value

    return apply


def _del(path: str) -> Callable[[dict[str, Any]], None]:
    def apply(d: dict[str, Any]) -> None:
        parts = path.split("/")
        target: Any = d
        for p in parts[:-1]:
            target = target[int(p)] if p.isdigit() else target[p]
        del target[parts[-1]]

    return apply


EMPTY = {"Version": "2012-10-17", "Statement": []}

CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("list is an object", _set("UserDetailList", {}), r"UserDetailList", r"expected a list, found an object"),
    ("name is a number", _set("UserDetailList/0/UserName", 7), r"UserDetailList\[0\]\.UserName", r"expected a string"),
    ("missing arn", _del("RoleDetailList/0/Arn"), r"RoleDetailList\[0\]", r"missing required field Arn"),
    ("tag without value", _set("UserDetailList/0/Tags/0", {"Key": "k"}), r"UserDetailList\[0\]\.Tags\[0\]", r"missing required field Value"),
    ("flag is text", _set("Policies/0/IsAttachable", "yes"), r"Policies\[0\]\.IsAttachable", r"expected true or false"),
    ("count is text", _set("Policies/0/AttachmentCount", "1"), r"Policies\[0\]\.AttachmentCount", r"expected an integer"),
    (
        "policy with 0 statements",
        _set("Policies/0/PolicyVersionList/0/Document", EMPTY),
        r"Policies\[0\]\.PolicyVersionList\[0\]\.Document\.Statement",
        r"the policy has 0 statements",
    ),
    (
        "inline policy with 0 statements",
        _set("UserDetailList/0/UserPolicyList/0/PolicyDocument", EMPTY),
        r"UserDetailList\[0\]\.UserPolicyList\[0\]\.PolicyDocument\.Statement",
        r"0 statements",
    ),
    (
        "Effect is case-sensitive",
        _set("UserDetailList/0/UserPolicyList/0/PolicyDocument", {"Statement": {"Effect": "allow", "Action": "s3:*", "Resource": "*"}}),
        r"UserDetailList\[0\]\.UserPolicyList\[0\]\.PolicyDocument\.Statement\[0\]\.Effect",
        r'Effect must be "Allow" or "Deny"',
    ),
    (
        "trust policy without principal",
        _set("RoleDetailList/0/AssumeRolePolicyDocument", {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}),
        r"RoleDetailList\[0\]\.AssumeRolePolicyDocument\.Statement\[0\]",
        r"needs Principal",
    ),
    (
        "identity policy with a principal",
        _set("Policies/0/PolicyVersionList/0/Document", TRUST | {"Statement": [TRUST["Statement"][0] | {"Resource": "*"}]}),  # type: ignore[index]
        r"Policies\[0\]\.PolicyVersionList\[0\]\.Document\.Statement\[0\]",
        r"cannot have Principal",
    ),
    (
        "document is a number",
        _set("Policies/0/PolicyVersionList/0/Document", 5),
        r"Policies\[0\]\.PolicyVersionList\[0\]\.Document",
        r"must be an object or JSON text",
    ),
    (
        "URL-encoded document cut short",
        _set("UserDetailList/0/UserPolicyList/0/PolicyDocument", quote(json.dumps(IDENTITY), safe="")[:40]),
        r"UserDetailList\[0\]\.UserPolicyList\[0\]\.PolicyDocument",
        r"invalid JSON",
    ),
    ("unknown top-level key", _set("Extra", 1), r"", r"unknown key\(s\) 'Extra'"),
    ("unknown key in an entry", _set("RoleDetailList/0/Colour", "red"), r"RoleDetailList\[0\]", r"unknown key\(s\) 'Colour'"),
    ("two defaults", lambda d: d["Policies"][0]["PolicyVersionList"].append({"Document": IDENTITY, "VersionId": "v2", "IsDefaultVersion": True}), r"Policies\[0\]\.PolicyVersionList", r"DefaultVersionId is v1 but IsDefaultVersion marks v1, v2"),
    ("default version absent", _set("Policies/0/DefaultVersionId", "v9"), r"Policies\[0\]", r"default version v9 is not in"),
    (
        "boundary of an unknown type",
        _set("RoleDetailList/0/PermissionsBoundary", {"PermissionsBoundaryType": "X", "PermissionsBoundaryArn": "arn:aws:iam::aws:policy/P"}),
        r"RoleDetailList\[0\]\.PermissionsBoundary\.PermissionsBoundaryType",
        r"unknown permissions boundary type",
    ),
    ("ARN that is not one", _set("UserDetailList/0/Arn", "user/u"), r"UserDetailList\[0\]\.Arn", r"is not an ARN"),
    (
        "two accounts in one file",
        _set("RoleDetailList/0/Arn", f"arn:aws:iam::{B}:role/r"),
        r"",
        rf"ARNs of more than one account in one file: {A} \(at UserDetailList\[0\]\.Arn\), {B}",
    ),
    ("tag repeated", _set("UserDetailList/0/Tags", [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]), r"UserDetailList\[0\]\.Tags\[1\]", r"tag 'a' appears twice"),
]  # fmt: skip


@pytest.mark.parametrize(("mutate", "location", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_document(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], None], location: str, message: str
) -> None:
    d = copy.deepcopy(doc())
    mutate(d)
    f = tmp_path / "authz.json"
    f.write_text(json.dumps(d))
    where = rf"{location}: " if location else ""
    with pytest.raises(InputError, match=rf"^{re.escape(str(f))}: {where}.*{message}") as info:
        load_paths([f])
    assert info.value.source == str(f)
    # and the CLI exits 2 with the same message on stderr
    res = CliRunner().invoke(app, ["snapshot", "import", str(f), "-o", str(tmp_path / "s.json.gz")])
    assert res.exit_code == 2
    assert str(info.value) in res.stderr
    assert not (tmp_path / "s.json.gz").exists()


def test_the_valid_document_imports(tmp_path: Path) -> None:
    """The base of every case above is itself valid, so each case fails for its own reason."""
    f = tmp_path / "authz.json"
    f.write_text(json.dumps(doc()))
    snap = load_paths([f], collected_at="2026-01-01T00:00:00Z")
    [acct] = snap.accounts
    assert acct.account_id == A
    assert acct.users[0].inline_policies[0].document == IDENTITY
    assert acct.roles[0].attached_managed_policies == ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
    # attached, but its document is not in the input: recorded as unknown, not dropped
    assert snap.aws_managed_policies == []
    [err] = snap.errors
    assert (err.account_id, err.error_code, err.resource) == (
        A,
        "NotInInput",
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
    )
    assert f"arn:aws:iam::{A}:role/r refers to this managed policy" in err.message


def test_a_filtered_export_records_what_is_missing(tmp_path: Path) -> None:
    """`--filter User` leaves out groups and policies; the snapshot says which, rather than looking empty."""
    d = doc()
    d["UserDetailList"][0]["GroupList"] = ["admins"]
    d["UserDetailList"][0]["AttachedManagedPolicies"] = [
        {"PolicyName": "x", "PolicyArn": f"arn:aws:iam::{A}:policy/x"}
    ]
    f = tmp_path / "users-only.json"
    f.write_text(json.dumps({"UserDetailList": d["UserDetailList"]}))
    snap = load_paths([f])
    assert {(e.resource, e.error_code) for e in snap.errors} == {
        (f"arn:aws:iam::{A}:policy/x", "NotInInput"),
        (None, "NotInInput"),
    }
    assert any("group 'admins'" in e.message for e in snap.errors)


@pytest.mark.parametrize(
    ("content", "location", "message"),
    [
        (lambda t: t[: len(t) // 2], r"line \d+ column \d+", r"invalid JSON: .*\(the file looks truncated\)"),
        (lambda t: t.replace('"u"', '"u\udcff"', 1), r"byte \d+", r"not UTF-8 text"),
        (lambda t: "", "", r"the file is empty"),
        (lambda t: t.replace("false", "NaN"), "", r"invalid JSON: NaN is not valid JSON"),
        (lambda t: "[1, 2]", "", r"unrecognized input"),
        (
            lambda t: t.replace('"UserName": "u"', '"UserName": "u", "UserName": "v"', 1),
            "",
            r"invalid JSON: the key 'UserName' appears twice",
        ),
    ],
    ids=["truncated", "not UTF-8", "empty", "NaN", "a list", "repeated key"],
)
def test_broken_files(tmp_path: Path, content: Callable[[str], str], location: str, message: str) -> None:
    f = tmp_path / "authz.json"
    f.write_bytes(content(json.dumps(doc(), indent=1)).encode("utf-8", "surrogateescape"))
    where = rf"{location}: " if location else ""
    with pytest.raises(InputError, match=rf"^{re.escape(str(f))}: {where}{message}"):
        load_paths([f])
    res = CliRunner().invoke(app, ["snapshot", "import", str(f), "-o", str(tmp_path / "s.json")])
    assert res.exit_code == 2 and str(f) in res.stderr


def test_account_from_option_and_conflicts(tmp_path: Path) -> None:
    only_aws = {
        "Policies": [doc()["Policies"][0] | {"Arn": "arn:aws:iam::aws:policy/cp"}],
        "IsTruncated": False,
    }
    f = tmp_path / "aws-only.json"
    f.write_text(json.dumps(only_aws))
    with pytest.raises(InputError, match=r"pass --account-id"):
        load_paths([f])
    snap = load_paths([f], account_id=A)
    assert [a.account_id for a in snap.accounts] == [A]
    assert [p.arn for p in snap.aws_managed_policies] == ["arn:aws:iam::aws:policy/cp"]

    g = tmp_path / "a.json"
    g.write_text(json.dumps(doc(A)))
    with pytest.raises(
        InputError, match=rf"{g}: UserDetailList\[0\]\.Arn: the ARNs name account {A}, not --account-id {B}"
    ):
        load_paths([g], account_id=B)
    with pytest.raises(InputError, match=r"not a 12-digit"):
        load_paths([g], account_id="12")


def test_several_accounts_and_duplicates(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(doc(A)))
    b.write_text(json.dumps(doc(B)))
    snap = load_paths([a, b])
    assert [x.account_id for x in snap.accounts] == [A, B]
    # the same export twice is harmless; a different one for the same ARN is refused, naming both files
    a2 = tmp_path / "a2.json"
    a2.write_text(json.dumps(doc(A)))
    assert load_paths([a, a2], collected_at="t") == load_paths([a], collected_at="t")
    changed = doc(A)
    changed["UserDetailList"][0]["Tags"] = []
    a2.write_text(json.dumps(changed))
    with pytest.raises(
        InputError, match=rf"^{a2}: UserDetailList\[0\]: user arn:aws:iam::{A}:user/u is also in {a}"
    ):
        load_paths([a, a2])


def test_unknown_file_kinds(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match=r"notes\.txt: not an input iamgraph knows"):
        load_paths([tmp_path])
    with pytest.raises(InputError, match=r"no such file or directory"):
        load_paths([tmp_path / "missing.json"])


def test_known_keys_match_the_iam_service_model() -> None:
    """The strict readers know exactly the members of botocore's GetAccountAuthorizationDetails shapes."""
    model = botocore.session.get_session().get_service_model("iam")
    out = model.operation_model("GetAccountAuthorizationDetails").output_shape
    assert set(out.members) == set(files.AUTH_TOP_KEYS)

    def members(shape_name: str) -> set[str]:
        return set(model.shape_for(shape_name).members)

    assert members("UserDetail") == set(files.USER_KEYS)
    assert members("GroupDetail") == set(files.GROUP_KEYS)
    assert members("RoleDetail") == set(files.ROLE_KEYS)
    assert members("InstanceProfile") == set(files.INSTANCE_PROFILE_KEYS)
    assert members("Role") == set(files.NESTED_ROLE_KEYS)
    assert members("ManagedPolicyDetail") == set(files.POLICY_KEYS)
    assert members("PolicyVersion") == set(files.VERSION_KEYS)
    assert members("PolicyDetail") == set(files.INLINE_KEYS)
    assert members("AttachedPolicy") == set(files.ATTACHED_KEYS)
    assert members("AttachedPermissionsBoundary") == set(files.BOUNDARY_KEYS)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=6)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=2), st.dictionaries(st.text(max_size=6), inner, max_size=2)
    ),
    max_leaves=5,
)
BASE_PATHS = _paths(doc())[1:]


@settings(max_examples=200, deadline=None)
@given(where=st.sampled_from(BASE_PATHS), value=JSON_VALUES, delete=st.booleans())
def test_any_damage_is_an_input_error_never_a_crash(where: tuple[Any, ...], value: Any, delete: bool) -> None:
    d = copy.deepcopy(doc())
    target: Any = d
    for step in where[:-1]:
        target = target[step]
    if delete:
        del target[where[-1]]
    else:
        target[where[-1]] = value
    loader = files._Loader(None)
    try:
        loader.add_authorization_details(files.Reader("f.json"), d)
        loader.build("t")
    except InputError as exc:
        assert str(exc).startswith("f.json")


def test_unreadable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root here, which reads any folder; so the refusal is simulated where the walk meets it.
    locked = tmp_path / "locked"
    locked.mkdir()
    real_iterdir = Path.iterdir

    def iterdir(self: Path) -> Any:
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    with pytest.raises(InputError, match=r"locked: cannot read: Permission denied"):
        load_paths([tmp_path])


def test_pages_naming_no_account_with_two_incomplete_accounts(tmp_path: Path) -> None:
    for acct in (A, B):
        page = doc(acct)
        page.update(IsTruncated=True, Marker="m")
        (tmp_path / f"{acct}-1.json").write_text(json.dumps(page))
    last = {"Policies": [doc()["Policies"][0] | {"Arn": "arn:aws:iam::aws:policy/cp"}], "IsTruncated": False}
    (tmp_path / "last.json").write_text(json.dumps(last))
    with pytest.raises(
        InputError,
        match=rf"last\.json: .*the page sets of accounts {A}, {B} are incomplete; pass --account-id",
    ):
        load_paths([tmp_path])
