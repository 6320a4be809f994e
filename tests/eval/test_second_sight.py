"""The caches that keep a parsed or compiled piece only from its second sight (model/memo.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from iamgraph.errors import PolicyParseError
from iamgraph.eval import batch
from iamgraph.eval.batch import evaluate_line, parse_line
from iamgraph.eval.compiled import compiled
from iamgraph.eval.engine import named_policy
from iamgraph.eval.types import PolicyType
from iamgraph.model.memo import Asking, SecondSightCache
from iamgraph.model.policy import parse_policy, statement_texts


def test_a_value_is_kept_from_the_second_sight() -> None:
    made: list[str] = []

    def make(x: str) -> str:
        made.append(x)
        return x.upper()

    cache: SecondSightCache[str, str] = SecondSightCache(10)
    assert [cache.get("a", make, "a") for _ in range(4)] == ["A"] * 4
    assert made == ["a", "a"]  # first sight made and dropped, second made and kept, then hits


def test_a_shared_statement_keeps_its_own_index_and_validation() -> None:
    st = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::shared-statement/*"}
    other = {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}
    docs = [parse_policy({"Version": "2012-10-17", "Statement": [st]}) for _ in range(3)]
    assert docs[1].statements[0] is docs[2].statements[0]
    moved = parse_policy({"Version": "2012-10-17", "Statement": [other, st]})
    assert moved.statements[1].index == 1 and moved.statements[1].action == ("s3:GetObject",)
    # Validation options are part of the key: the same text is no resource-based statement.
    with pytest.raises(PolicyParseError, match="needs Principal"):
        parse_policy({"Version": "2012-10-17", "Statement": [st]}, principal=True)


def test_nan_is_not_taken_for_a_cached_null() -> None:
    # orjson writes NaN as null: a cached statement with "Sid": null must not answer for "Sid": NaN,
    # which IAM's grammar (and parse_policy) rejects.
    st = {"Sid": None, "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::nan-sid/*"}
    for _ in range(3):
        assert parse_policy({"Statement": [st]}).statements[0].sid is None
    with pytest.raises(PolicyParseError, match="Sid must be a string"):
        parse_policy({"Statement": [{**st, "Sid": float("nan")}]})


# ------------------------------------------------------------------ batch lines: the whole policy set, from its second sight

_ALICE = "arn:aws:iam::111122223333:user/alice"
_READ = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                 "Resource": "arn:aws:s3:::second-sight-set/*"}]}


def _batch_line(policies: dict[str, Any], resource: str = "arn:aws:s3:::second-sight-set/k",
                action: str = "s3:GetObject") -> dict[str, Any]:
    return {"id": 1, "request": {"principal": _ALICE, "action": action, "resource": resource},
            "policies": policies}


def test_lines_with_the_same_policies_share_one_parsed_policy_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "_set_cache", Asking())  # earlier tests' distinct sets do not count
    sets = [parse_line(_batch_line({"identity": [_READ]}))[1] for _ in range(3)]
    assert sets[1] is sets[2] and sets[0] == sets[1]
    # Another set of documents is its own.
    other = parse_line(_batch_line({"identity": [_READ, _READ]}))[1]
    assert len(other.identity) == 2


def test_a_nan_where_a_document_belongs_is_never_taken_for_a_cached_null() -> None:
    # orjson writes NaN as null: "resource": null (no resource policy) must not answer for "resource": NaN.
    for _ in range(3):
        assert evaluate_line(_batch_line({"identity": [_READ], "resource": None}))["decision"] == "Allowed"
    out = evaluate_line(_batch_line({"identity": [_READ], "resource": float("nan")}))
    assert out["decision"] == "ImplicitlyDenied" and "policies.resource" in out["error"]


def test_kms_grants_are_read_for_each_lines_own_key() -> None:
    # A grant becomes a policy named after the line's key (kms_grants.py): lines with the same grants on
    # different keys must each name their own key.
    grants = [{"GrantId": "g-1", "GranteePrincipal": _ALICE, "Operations": ["Decrypt"]}]
    for n in range(3):
        key = f"arn:aws:kms:us-east-1:111122223333:key/0000000{n}-aaaa-bbbb-cccc-dddddddddddd"
        out = evaluate_line(_batch_line({"identity": [], "kmsGrants": grants}, resource=key, action="kms:Decrypt"))
        assert out["decision"] == "Allowed"
        assert [r["policyId"] for r in out["reasons"]] == [f"{key}:grant/g-1"]


def test_after_many_distinct_sets_a_repeated_set_is_found_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # A batch of distinct documents stops looking every line up (memo.Asking); lines that repeat again are
    # shared again within a few dozen lines, and the answers never depend on it.
    monkeypatch.setattr(batch, "_set_cache", Asking())
    for n in range(100):
        doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                       "Resource": f"arn:aws:s3:::distinct-{n}/*"}]}
        assert evaluate_line(_batch_line({"identity": [doc]}))["decision"] == "ImplicitlyDenied"
    assert batch._set_cache.misses >= 64
    again = [parse_line(_batch_line({"identity": [_READ, _READ, _READ]}))[1] for _ in range(40)]
    assert again[-1] is again[-2]
    assert batch._set_cache.misses == 0


# ------------------------------------------------------------------ documents keyed by their statements' texts

def _named(doc: Any, ptype: PolicyType = PolicyType.IDENTITY, pid: str = "policies.identity[0]") -> Any:
    return named_policy(doc, pid, ptype)


def test_a_key_the_document_key_leaves_out_is_still_refused() -> None:
    # A document's key is its Version, Id and statements' texts only when it has no other top-level key: a
    # kept document must not answer for the same one with an unknown key beside it.
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                   "Resource": "arn:aws:s3:::doc-key-extra/*"}]}
    for _ in range(3):
        assert _named(doc).policy.statements[0].action == ("s3:GetObject",)
    with pytest.raises(PolicyParseError, match="unknown top-level key"):
        _named({**doc, "Comment": "x"})
    with pytest.raises(PolicyParseError, match="Version must be one of"):
        _named({**doc, "Version": ["2012-10-17"]})


def test_the_same_statement_under_two_versions_is_compiled_for_each() -> None:
    # The parse shares one Statement object between the two documents (its key has no Version), but policy
    # variables are substituted only under 2012-10-17: each version compiles its own form.
    st = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::versions/${aws:username}/*"}
    new = {"Version": "2012-10-17", "Statement": [st]}
    old = {"Version": "2008-10-17", "Statement": [st]}

    def decide(doc: dict[str, Any], key: str) -> str:
        out = evaluate_line(_batch_line({"identity": [doc]}, resource=f"arn:aws:s3:::versions/{key}/k"))
        return str(out["decision"])

    for _ in range(3):
        assert decide(new, "alice") == "Allowed"
        assert decide(old, "alice") == "ImplicitlyDenied"
        assert decide(old, "${aws:username}") == "Allowed"  # literal text under 2008-10-17
    assert _named(new).policy.statements[0] is _named(old).policy.statements[0]


def test_statements_sharing_a_condition_block_but_one_value_decide_apart() -> None:
    def doc(cidr: str, bucket: str) -> dict[str, Any]:
        return {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*",
             "Condition": {"IpAddress": {"aws:SourceIp": ["172.16.0.0/12", cidr]}}}]}

    def decide(cidr: str, n: int) -> str:
        line = _batch_line({"identity": [doc(cidr, f"cond-block-{n}")]}, resource=f"arn:aws:s3:::cond-block-{n}/k")
        line["request"]["context"] = {"aws:SourceIp": "10.1.2.3"}
        return str(evaluate_line(line)["decision"])

    for n in range(4):  # distinct documents; the condition blocks repeat from line to line
        assert decide("10.0.0.0/8", n) == "Allowed"
        assert decide("192.168.0.0/16", n) == "ImplicitlyDenied"


def test_a_malformed_statement_after_shared_valid_ones_is_refused_as_before() -> None:
    valid = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::malformed-after/*"}
    for _ in range(3):
        assert evaluate_line(_batch_line({"identity": [{"Version": "2012-10-17", "Statement": [valid]}]},
                                         resource="arn:aws:s3:::malformed-after/k"))["decision"] == "Allowed"
    for bad, message in (
        ({"Effect": "Allow", "Action": "s3GetObject", "Resource": "*"},
         "policies.identity[0]: Statement[1].Action[0]: 's3GetObject' is not an action: expected 'service:Action' or '*'"),
        ({"Effect": "allow", "Action": "s3:GetObject", "Resource": "*"},
         "policies.identity[0]: Statement[1].Effect: Effect must be \"Allow\" or \"Deny\", not 'allow'"),
        ({"Effect": "Allow", "Action": "s3:GetObject"},
         "policies.identity[0]: Statement[1]: the statement has neither Resource nor NotResource"),
    ):
        for _ in range(2):
            out = evaluate_line(_batch_line({"identity": [{"Version": "2012-10-17", "Statement": [valid, bad]}]},
                                            resource="arn:aws:s3:::malformed-after/k"))
            assert out["decision"] == "ImplicitlyDenied"
            assert out["error"] == message


def test_a_shared_statement_is_compiled_once_for_the_documents_that_carry_it() -> None:
    shared = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::compiled-once"}
    docs = [{"Version": "2012-10-17", "Statement": [
        shared, {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::compiled-once-{n}/*"}]}
        for n in range(4)]
    made = [compiled(_named(d).policy) for d in docs]
    assert made[2].statements[0] is made[3].statements[0]  # from the parse's second sight on
    assert made[2].statements[1] is not made[3].statements[1]
    assert [m.statements[1].resources[0].text for m in made if m.statements[1].resources] == [
        f"arn:aws:s3:::compiled-once-{n}/*" for n in range(4)]


def test_a_reason_names_its_own_statement_at_a_place_other_documents_used() -> None:
    # StatementRefs are shared by place (type, policy id, index, sid, effect), never by content.
    for n, sid in enumerate(("First", "Second", None, "First")):
        st: dict[str, Any] = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::ref-{n}/*"}
        if sid is not None:
            st["Sid"] = sid
        out = evaluate_line(_batch_line({"identity": [{"Version": "2012-10-17", "Statement": [st]}]},
                                        resource=f"arn:aws:s3:::ref-{n}/k"))
        assert out["reasons"] == [{"policyType": "identity", "policyId": "policies.identity[0]", "statementIndex": 0,
                                   "sid": sid, "effect": "Allow"}]


def test_statements_of_one_template_under_two_versions_read_their_conditions_each_by_its_own() -> None:
    # New statements made from one template share its Condition tuple, whose compiled clauses are found by the
    # tuple's identity; a variable in a condition value is substituted only under 2012-10-17.
    def decide(version: str, n: int) -> str:
        doc = {"Version": version, "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::tmpl-versions-{n}",
             "Condition": {"StringLike": {"s3:prefix": "${aws:username}/*"}}}]}
        line = _batch_line({"identity": [doc]}, resource=f"arn:aws:s3:::tmpl-versions-{n}", action="s3:ListBucket")
        line["request"]["context"] = {"s3:prefix": "alice/reports"}
        return str(evaluate_line(line)["decision"])

    for n in range(6):
        assert decide("2012-10-17", n) == "Allowed"
        assert decide("2008-10-17", n) == "ImplicitlyDenied"


def test_lines_with_their_own_identity_policy_share_the_parse_of_the_same_scp_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batch, "_slot_asking", {k: Asking() for k in batch._slot_asking})
    scps = [[{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]]
    sets = []
    for n in range(4):
        own = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                       "Resource": f"arn:aws:s3:::slot-{n}/*"}]}
        sets.append(parse_line(_batch_line({"identity": [own], "scps": scps}))[1])
    assert sets[2].scps is sets[3].scps
    assert sets[2].identity is not sets[3].identity
    assert [s.identity[0].policy.statements[0].resource for s in sets] == [
        (f"arn:aws:s3:::slot-{n}/*",) for n in range(4)]


def test_a_nan_in_a_member_of_the_policies_is_never_taken_for_a_cached_null() -> None:
    def boundary(sid: Any) -> dict[str, Any]:
        return {"Version": "2012-10-17", "Statement": [{"Sid": sid, "Effect": "Allow", "Action": "s3:*",
                                                       "Resource": "*"}]}

    for n in range(3):  # distinct identity documents, the same boundary
        own = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                       "Resource": "arn:aws:s3:::second-sight-set/*", "Sid": f"S{n}"}]}
        out = evaluate_line(_batch_line({"identity": [own], "permissionBoundary": boundary(None)}))
        assert out["decision"] == "Allowed"
    out = evaluate_line(_batch_line({"identity": [_READ], "permissionBoundary": boundary(float("nan"))}))
    assert out["decision"] == "ImplicitlyDenied" and "policies.permissionBoundary" in out["error"]


def test_a_document_with_a_nan_is_refused_after_the_same_document_with_a_null_was_kept() -> None:
    # Found with the member cache above: main's named_policy keyed such documents by their sorted JSON, in which
    # NaN and null look alike, and answered the NaN one with the kept parse of the null one.
    doc = {"Version": "2012-10-17", "Statement": [{"Sid": None, "Effect": "Allow", "Action": "s3:*",
                                                   "Resource": "arn:aws:s3:::nan-doc/*"}]}
    for _ in range(3):
        assert _named(doc, PolicyType.PERMISSION_BOUNDARY, "b").policy.statements[0].sid is None
    with pytest.raises(PolicyParseError, match="Sid must be a string"):
        _named({"Version": "2012-10-17", "Statement": [{**doc["Statement"][0], "Sid": float("nan")}]},
               PolicyType.PERMISSION_BOUNDARY, "b")


def test_a_noted_key_is_kept_at_its_first_get() -> None:
    made: list[str] = []

    def make(x: str) -> str:
        made.append(x)
        return x.upper()

    cache: SecondSightCache[str, str] = SecondSightCache(10)
    assert cache.note("a") is False  # first sight: noted, nothing made
    assert cache.note("a") is True and cache.known("a")
    assert [cache.get("a", make, "a") for _ in range(3)] == ["A"] * 3
    assert made == ["a"]  # kept when first made, then hits


def test_a_statement_template_is_parsed_from_its_second_sight(monkeypatch: pytest.MonkeyPatch) -> None:
    # model.policy._parse_statement_at: a statement whose template (Resource "*") is new is parsed whole; from the
    # template's second sight its parse is made once, kept, and each statement reads only its own Resource.
    from iamgraph.model import policy as model_policy

    templates: list[Any] = []
    parse_template = model_policy._parse_template

    def counted(st: Any, *args: Any) -> Any:
        templates.append(st)
        return parse_template(st, *args)

    monkeypatch.setattr(model_policy, "_parse_template", counted)
    monkeypatch.setattr(model_policy, "_templates", SecondSightCache(100))

    def doc(i: int) -> dict[str, Any]:
        return {"Version": "2012-10-17", "Statement": [
            {"Sid": "Once", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::b-{i}/*",
             "Condition": {"StringEquals": {"aws:PrincipalTag/team": "blue"}}}]}

    parsed = [parse_policy(doc(i), require_resource=True, principal=False).statements[0] for i in range(4)]
    assert [st.resource for st in parsed] == [(f"arn:aws:s3:::b-{i}/*",) for i in range(4)]
    assert len(templates) == 1 and templates[0]["Resource"] == "*"  # not at the first sight; once, then kept
    model_policy._statements.clear()
    alone = [model_policy._parse_statement(doc(i)["Statement"][0], 0, source="<policy>", require_resource=True,
                                           principal=False) for i in range(4)]
    assert parsed == alone


def test_a_kept_key_holds_a_buffer_of_its_own_length() -> None:
    # orjson (3.12 on) hands out dumps's output in a buffer of about 4 kB whatever the text's length, and the caches
    # are keyed by such texts (memo.trimmed says why a kept key is copied). Keeping distinct statements from their
    # second sight must cost about what their texts and parses take, not a few kB each.
    import tracemalloc

    from iamgraph.model.memo import trimmed

    text = orjson.dumps({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    key = (("2012-10-17", None, (text, text)), "identity")
    kept = trimmed(key)
    assert kept == key and hash(kept) == hash(key)
    assert kept[0][2][0] is not text and kept[0][2][0] == text
    assert trimmed("plain") == "plain" and trimmed((1, "a")) == (1, "a")

    docs = [{"Version": "2012-10-17", "Statement": [
        {"Sid": f"S{i}", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::kept-key-{i}/*"}]}
        for i in range(300)]
    for doc in docs:  # first sights: nothing kept but hashes
        parse_policy(doc, statement_texts=statement_texts(doc))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept_docs = [parse_policy(doc, statement_texts=statement_texts(doc)) for doc in docs]  # second sights: kept
        per_statement = (tracemalloc.get_traced_memory()[0] - before) / len(docs)
    finally:
        tracemalloc.stop()
    assert len(kept_docs) == 300
    assert per_statement < 2_000, per_statement  # about 4,500 bytes each with orjson's buffers kept as they come


# ------------------------------------------------- documents and statements of a kind that keeps missing: no keys

def _stop_asking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every document and statement cache answered as for a batch whose documents have kept missing."""
    from iamgraph.eval import engine
    from iamgraph.model import policy

    never = Asking()
    never.misses = 10**9
    never.skipped = -(10**9)  # never reaches the every-16th ask
    monkeypatch.setattr(engine, "_document_asking", {t: never for t in PolicyType})
    monkeypatch.setattr(policy, "_asking_for", lambda *_: never)


_CHECKED_DOCS: list[Any] = [
    {"Version": "2012-10-17", "Statement": [{"Sid": "A", "Effect": "Allow", "Action": "s3:GetObject",
                                             "Resource": "arn:aws:s3:::unasked/*"}]},
    {"Version": "2012-10-17", "Statement": {"Effect": "Deny", "NotAction": "iam:*", "Resource": "*",
                                            "Condition": {"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}}}},
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*"}]},  # no Resource
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}]},
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                                             "Action": "s3:GetObject", "Resource": "arn:aws:s3:::unasked/*"}]},
    {"Version": "2012-10-17", "Statement": [{"Effect": "allow", "Action": "s3:*", "Resource": "*"}]},
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*",
                                             "Condition": {"IpAddress": {"aws:SourceIp": [float("nan")]}}}]},
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": [""]}]},
    {"Version": "2012-10-17", "Extra": 1, "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]},
]


def _outcome(doc: Any, ptype: PolicyType) -> Any:
    try:
        return named_policy(doc, "p", ptype).policy
    except PolicyParseError as exc:
        return str(exc)


@pytest.mark.parametrize("ptype", list(PolicyType))
def test_a_document_parsed_without_keys_is_its_own_parse(ptype: PolicyType, monkeypatch: pytest.MonkeyPatch) -> None:
    # A kind of document that keeps missing is parsed without its keys (memo.Asking in engine.named_policy and
    # model.policy._statement): the same validation for the same type, so the same Policy or the same refusal.
    asked = [_outcome(doc, ptype) for doc in _CHECKED_DOCS]
    _stop_asking(monkeypatch)
    unasked = [_outcome(doc, ptype) for doc in _CHECKED_DOCS]
    assert unasked == asked
    assert any(isinstance(x, str) for x in asked) and any(not isinstance(x, str) for x in asked)


def test_after_many_distinct_documents_a_repeated_one_is_shared_again() -> None:
    from iamgraph.eval import engine

    for n in range(100):
        _named({"Version": "2012-10-17", "Statement": [
            {"Sid": f"S{n}", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::miss-{n}/*"}]})
    assert engine._document_asking[PolicyType.IDENTITY].misses >= 64
    doc = {"Version": "2012-10-17", "Statement": [{"Sid": "Back", "Effect": "Allow", "Action": "s3:GetObject",
                                                   "Resource": "arn:aws:s3:::back/*"}]}
    again = [_named(doc).policy for _ in range(40)]
    assert again[-1] is again[-2]
    assert engine._document_asking[PolicyType.IDENTITY].misses == 0


# ------------------------------------------------------------------ 1 == True in Python, not in a policy

def _tagged_line(value: Any, tag: str, op: str = "StringEquals") -> dict[str, Any]:
    return {"id": 1, "request": {"principal": _ALICE, "action": "s3:GetObject", "resource": "arn:aws:s3:::typed/k",
                                 "context": {"aws:PrincipalTag/typed": tag}},
            "policies": {"identity": [{"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
                 "Condition": {op: {"aws:PrincipalTag/typed": value}}}]}]}}


@pytest.mark.parametrize(("kept", "asked", "tag", "op"), [
    (1, True, "true", "StringEquals"),    # a JSON true is the text "true", a 1 the text "1"
    (True, 1, "1", "StringEquals"),
    (0, False, "false", "StringEquals"),
    (1, True, "true", "Bool"),            # Bool reads true, not 1
    (True, 1, "1", "NumericEquals"),      # NumericEquals reads 1, not true
])
def test_a_kept_condition_value_never_answers_for_another_json_type(kept: Any, asked: Any, tag: str, op: str) -> None:
    # Python's equality has 1 == True (and (1,) == (True,)), so a cache keyed by the parsed clause or policy alone
    # answered for `true` with the kept clause of `1`: StringEquals {"k": true} then denied a tag "true" (and allowed
    # "1"). The answer must be what a process that never saw the other value gives.
    fresh = evaluate_line(_tagged_line(asked, tag, op))["decision"]
    assert fresh == "Allowed"
    for _ in range(3):
        evaluate_line(_tagged_line(kept, tag, op))
    assert [evaluate_line(_tagged_line(asked, tag, op))["decision"] for _ in range(3)] == ["Allowed"] * 3


def test_two_kept_policies_equal_but_for_a_values_type_are_compiled_each_by_its_own() -> None:
    one, true = ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
                                                          "Condition": {"StringEquals": {"aws:PrincipalTag/t": v}}}]}
                 for v in (1, True))
    a, b = parse_policy(one), parse_policy(true)
    assert a == b  # what the compiled table's key must not rest on alone
    assert compiled(a).statements[0].clauses[0].values == (1,)
    assert compiled(b).statements[0].clauses[0].values == (True,)
    assert type(compiled(b).statements[0].clauses[0].values[0]) is bool
