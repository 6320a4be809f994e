"""Offline import keeps an unreadable resource policy as unknown, like the live collector.

A resource-policy file may hold the error the get-policy call returned instead of its output, in the shape of
an AWS error response (``{"Error": {"Code", "Message"}}``, what botocore's ``ClientError.response`` holds). The
resource then stays in the snapshot with ``policy_unknown`` and a collection error naming the call, so every
answer about it says it is incomplete; an error code by which the call says there is no policy
(``NoSuchBucketPolicy`` for GetBucketPolicy, ``ResourceNotFoundException`` for Lambda GetPolicy,
``RepositoryPolicyNotFoundException`` for ECR) means absent, not unknown, as the collector takes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from iamgraph.collect.files import load_paths
from iamgraph.errors import InputError
from iamgraph.graph import build_graph
from iamgraph.query import who_can
from iamgraph.query.incomplete import unknown_policies
from iamgraph.snapshot import read_snapshot, write_snapshot

ACCT = "111122223333"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY = f"arn:aws:kms:us-east-1:{ACCT}:key/{KEY_ID}"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCT}:jobs"
FUNCTION = f"arn:aws:lambda:us-east-1:{ACCT}:function:plain"
DENIED = {"Code": "AccessDeniedException", "Message": f"User: arn:aws:iam::{ACCT}:user/auditor is not authorized "
          "to perform: kms:GetKeyPolicy"}


def _write(base: Path, rel: str, body: Any) -> Path:
    path = base / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body))
    return path


def _folder(tmp_path: Path) -> Path:
    base = tmp_path / "resource-policies"
    _write(base, f"{ACCT}/us-east-1/kms/{KEY_ID}.json", {"Error": DENIED})
    _write(base, f"{ACCT}/us-east-1/sqs/jobs.json", {"Error": {"Code": "AccessDenied"}})
    _write(base, f"{ACCT}/global/s3/open.json", {"Error": {"Code": "NoSuchBucketPolicy",
                                                           "Message": "The bucket policy does not exist"}})
    _write(base, f"{ACCT}/us-east-1/lambda/plain.json", {"Arn": FUNCTION, "Error": {
        "Code": "ResourceNotFoundException", "Message": "The resource you requested does not exist."}})
    return base


def test_an_error_file_makes_the_policy_unknown_and_records_the_call(tmp_path: Path) -> None:
    snap = load_paths([_folder(tmp_path)])
    by_arn = {r.arn: r for a in snap.accounts for r in a.resources}
    assert set(by_arn) == {KEY, QUEUE, "arn:aws:s3:::open", FUNCTION}
    assert by_arn[KEY].policy is None and by_arn[KEY].policy_unknown
    assert by_arn[QUEUE].policy is None and by_arn[QUEUE].policy_unknown
    # "There is none" is absent, not unknown, and no error.
    assert not by_arn["arn:aws:s3:::open"].policy_unknown and not by_arn[FUNCTION].policy_unknown
    errors = {(e.service, e.call, e.error_code, e.resource, e.region) for e in snap.errors}
    assert errors == {("kms", "GetKeyPolicy", "AccessDeniedException", KEY, "us-east-1"),
                      ("sqs", "GetQueueAttributes", "AccessDenied", QUEUE, "us-east-1")}
    assert next(e.message for e in snap.errors if e.resource == KEY) == DENIED["Message"]
    write_snapshot(snap, tmp_path / "s.json")
    back = read_snapshot(tmp_path / "s.json")
    assert {r.arn for a in back.accounts for r in a.resources if r.policy_unknown} == {KEY, QUEUE}


def test_answers_about_an_imported_unreadable_key_say_incomplete(tmp_path: Path) -> None:
    graph = build_graph(load_paths([_folder(tmp_path)]))
    assert set(unknown_policies(graph)) == {KEY, QUEUE}
    res = who_can(graph, KEY, action="kms:Decrypt")
    assert [x.resource for x in res.incomplete] == [KEY]
    assert who_can(graph, "arn:aws:s3:::open/k", action="s3:GetObject").incomplete == ()


@pytest.mark.parametrize(("body", "message"), [
    ({"Error": "denied"}, r"k\.json: Error: expected an object"),
    ({"Error": {"Message": "no code"}}, r"k\.json: Error: .*Code"),
    ({"Error": {"Code": "AccessDenied", "Status": 403}}, r"k\.json: Error: unknown key\(s\) 'Status'"),
    ({"Error": {"Code": "AccessDenied"}, "Policy": "{}"}, r"k\.json: unknown key\(s\) 'Policy'"),
])
def test_a_malformed_error_file_is_named(tmp_path: Path, body: dict[str, Any], message: str) -> None:
    base = tmp_path / "resource-policies"
    _write(base, f"{ACCT}/us-east-1/kms/k.json", body)
    with pytest.raises(InputError, match=message):
        load_paths([base])
