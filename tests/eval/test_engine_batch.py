"""The batch line format and malformed input: clear errors naming the policy and the statement."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iamgraph.errors import PolicyParseError
from iamgraph.eval import Mode, PolicyType, batch, named_policy
from iamgraph.eval.batch import evaluate_line, evaluate_lines
from iamgraph.gcpause import without_cyclic_gc

USER = "arn:aws:iam::111122223333:user/alice"
GOOD = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def line(**policies: Any) -> dict[str, Any]:
    return {"id": 7, "request": {"principal": USER, "action": "s3:GetObject", "resource": "arn:aws:s3:::b/k"},
            "policies": policies}


def test_named_policy_error_names_policy_and_statement() -> None:
    bad = {"Version": "2012-10-17", "Statement": [GOOD["Statement"][0], {"Effect": "Allow", "Action": "s3:*"}]}
    with pytest.raises(PolicyParseError) as err:
        named_policy(bad, "arn:aws:iam::111122223333:policy/p", PolicyType.IDENTITY)
    assert "Statement[1]" in str(err.value) and "Resource" in str(err.value)


def test_named_policy_is_cached_by_content() -> None:
    # A document seen once is parsed on its own (engine.named_policy); from its second sight on, one
    # Policy object per content is shared whatever the id, so its compiled form is shared too.
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                   "Resource": "arn:aws:s3:::cached-by-content/*"}]}
    a = named_policy(dict(doc), "x", PolicyType.IDENTITY)
    b = named_policy({"Statement": doc["Statement"], "Version": "2012-10-17"}, "y", PolicyType.IDENTITY)
    c = named_policy(dict(doc), "z", PolicyType.IDENTITY)
    assert a.policy == b.policy and b.policy is c.policy
    assert (a.policy_id, b.policy_id, c.policy_id) == ("x", "y", "z")


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ([], "must be a JSON object"),
        ({"id": 1}, "request must be an object"),
        ({"id": 1, "request": {"principal": USER, "action": "s3:GetObject"}}, "request.resource"),
        ({"id": 1, "request": {"principal": USER, "action": "GetObject", "resource": "*"}}, "request.action"),
        ({"id": 1, "request": {"principal": USER, "action": "s3:GetObject", "resource": "*", "extra": 1}},
         "unknown key(s) extra"),
        (line(identity=GOOD), "policies.identity: must be a list"),
        (line(identity=[GOOD], scps=[GOOD]), "policies.scps[0]: must be a list"),
        (line(identity=[{"Version": "2012-10-17", "Statement": [{"Effect": "Permit", "Action": "s3:*",
                                                                  "Resource": "*"}]}]),
         "policies.identity[0]: Statement[0].Effect"),
        (line(resource={"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*",
                                                                 "Resource": "*"}]}),
         "policies.resource: Statement[0]: a resource-based policy statement needs Principal"),
        (line(identity=["not a policy"]), "policies.identity[0]"),
        (line(permissionBoundary=[GOOD]), "policies.permissionBoundary: a policy must be a JSON object"),
        ({"id": 1, "request": {"principal": USER, "action": "s3:GetObject", "resource": "*",
                               "context": {"aws:SourceIp": {"a": 1}}}, "policies": {}}, "request.context.aws:SourceIp"),
        ({"id": 1, "request": {"principal": USER, "action": "s3:GetObject", "resource": "*",
                               "resourceAccount": "12"}, "policies": {}}, "12-digit"),
    ],
)
def test_bad_lines_get_an_error_and_never_a_grant(obj: Any, fragment: str) -> None:
    for mode in (Mode.STRICT, Mode.DISCOVERY):
        out = evaluate_line(obj, mode)
        assert out["decision"] == "ImplicitlyDenied"
        assert fragment in out["error"], out["error"]
        assert set(out) >= {"id", "decision", "conditions", "reasons", "error"}


def test_evaluation_error_keeps_the_decision_and_names_the_statement() -> None:
    broken_deny = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Broken", "Effect": "Deny", "Action": "s3:*", "Resource": "*",
         "Condition": {"DateLessThan": {"aws:CurrentTime": "tomorrow"}}}]}
    out = evaluate_line(line(identity=[GOOD, broken_deny]))
    assert out["decision"] == "ExplicitlyDenied"
    assert out["error"].startswith("policies.identity[1] Statement[0]: Condition.DateLessThan")


def test_output_shape_for_a_conditional_answer() -> None:
    cond = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*",
                                                    "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}
    out = evaluate_line(line(identity=[cond]), Mode.DISCOVERY)
    assert out == {
        "id": 7,
        "decision": "Allowed",
        "conditions": [[{"operator": "Bool", "key": "aws:SecureTransport", "values": ["true"], "negated": False}]],
        "reasons": [{"policyType": "identity", "policyId": "policies.identity[0]", "statementIndex": 0,
                     "sid": None, "effect": "Allow"}],
        "blockedBy": [],
        "orgGaps": [],
        "refusedBy": None,
        "warnings": [],
        "error": None,
    }


# ---------------------------------------------------------------- the batch reader: bytes in, one answer per line


def _good_line(i: int) -> bytes:
    return orjson.dumps(line(identity=[GOOD]) | {"id": i})


def test_invalid_utf8_costs_only_its_line() -> None:
    lines = [_good_line(1) + b"\n", b'{"id": 2, "request": "\xff\xfe"}\n', b"\n", _good_line(3) + b"\n"]
    out = list(evaluate_lines(lines, "in.jsonl"))
    assert [n for n, _ in out] == [1, 2, 4]
    assert [r["id"] for _, r in out] == [1, None, 3]
    assert out[0][1]["decision"] == out[2][1]["decision"] == "Allowed"
    assert out[0][1]["error"] is None and out[2][1]["error"] is None
    bad = out[1][1]
    assert bad["decision"] == "ImplicitlyDenied" and bad["error"].startswith("in.jsonl: line 2: not UTF-8 (byte 23")


def test_a_byte_order_mark_on_the_first_line_is_not_an_error() -> None:
    ((_, res),) = evaluate_lines([b"\xef\xbb\xbf" + _good_line(1)], "in.jsonl")
    assert res["error"] is None and res["decision"] == "Allowed"


_GOOD_ANSWER = orjson.dumps({k: v for k, v in evaluate_line(orjson.loads(_good_line(0))).items() if k != "id"})


def _is_good(raw: bytes) -> bool:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return isinstance(obj, dict) and obj.get("request") == line()["request"] and obj.get("policies") == {
        "identity": [GOOD]
    } and set(obj) == {"id", "request", "policies"}


_bad_bytes = st.binary(max_size=200).map(lambda b: b.replace(b"\n", b""))


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(_good_line(draw(st.integers(0, 10**6))))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw) - 1))
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = draw(st.integers(0, 255).filter(lambda b: b != 0x0A))
        if op == "replace":
            raw[at] = byte
        elif op == "insert":
            raw.insert(at, byte)
        elif len(raw) > 1:
            del raw[at]
    return bytes(raw)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.integers(0, 10**6).map(_good_line), _bad_bytes, _mutated()), max_size=25))
def test_batch_reader_fuzz_answers_every_good_line(lines: list[bytes]) -> None:
    out = list(evaluate_lines([x + b"\n" for x in lines], "fuzz"))
    bom = b"\xef\xbb\xbf"
    expected = [n for n, x in enumerate(lines, 1) if (x[3:] if n == 1 and x.startswith(bom) else x).strip()]
    # Exactly one answer per non-blank line, in order (a byte order mark on line 1 is not content).
    assert [n for n, _ in out] == expected
    for n, res in out:
        raw = lines[n - 1]
        assert {"id", "decision", "conditions", "reasons", "blockedBy", "error"} <= set(res)
        if _is_good(raw):
            assert res["error"] is None
            assert orjson.dumps({k: v for k, v in res.items() if k != "id"}) == _GOOD_ANSWER
        elif res["error"] is not None:
            assert res["decision"] == "ImplicitlyDenied" and f"line {n}" in res["error"]


def _reference_reader_error(raw: bytes, n: int) -> str | None:
    """The reader's message for a line that cannot be read, as the reader has always made it: decode, then parse."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"fuzz: line {n}: not UTF-8 (byte {exc.start + 1}: {exc.reason})"
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return f"fuzz: line {n}: invalid JSON ({exc})"
    return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_bad_bytes, _mutated(), st.just(b'{"a": "\xed\xa0\x80"}')), min_size=1, max_size=10))
def test_a_line_that_cannot_be_read_gets_the_message_of_decoding_it_first(lines: list[bytes]) -> None:
    # The reader hands the bytes to orjson without decoding them; a line orjson refuses is decoded to say why,
    # exactly as when every line was decoded first.
    given = [x + b"\n" for x in lines]
    answers = dict(evaluate_lines(given, "fuzz"))
    for n, raw in enumerate(given, 1):
        raw = raw[3:] if n == 1 and raw.startswith(b"\xef\xbb\xbf") else raw
        expected = _reference_reader_error(raw, n) if raw.strip() else None
        if expected is not None:
            assert answers[n]["error"] == expected


def test_each_answer_owns_its_reasons() -> None:
    # ref_to_json builds a reference's JSON once and hands out copies: an answer changed by its reader must
    # not change the next one.
    first = evaluate_line(orjson.loads(_good_line(1)))
    first["reasons"][0]["sid"] = "changed"
    second = evaluate_line(orjson.loads(_good_line(2)))
    assert second["reasons"][0]["sid"] != "changed"
    assert second["reasons"] == evaluate_line(orjson.loads(_good_line(3)))["reasons"]


def test_a_member_left_out_is_what_its_parse_makes_of_null() -> None:
    # batch._slot answers a null member without calling its parse: the answer must be the parse's own.
    from iamgraph.eval.batch import _identity, _levels, _optional, _slot
    from iamgraph.eval.types import PolicyType

    for parse, args in ((_identity, ()), (_optional, ("policies.session", PolicyType.SESSION)),
                        (_levels, ("policies.rcps", PolicyType.RCP))):
        assert _slot("session", None, parse, *args) == parse(None, *args), parse.__name__


# A line's policies read from its template (batch._from_template): every line of a family shares all but the
# Resource/NotResource values of its statements; valid and invalid values, and statements with both, neither or
# the wrong other elements, so that templates, values and whole lines fail in every combination.
_VALUES = st.sampled_from(["*", "arn:aws:s3:::b/*", ["arn:aws:s3:::a", "arn:aws:s3:::b/*"], ["*"], "", [], [""], 5,
                           ["arn:aws:s3:::a", 3], {"a": 1}, "arn:aws:s3:::${aws:username}/*", True])
_SHAPES = st.fixed_dictionaries({
    "keys": st.sampled_from([("Resource",), ("NotResource",), ("Resource", "NotResource"), ()]),
    "effect": st.sampled_from(["Allow", "Allow", "Deny", "allow"]),
    "action": st.sampled_from(["s3:GetObject", ["s3:Get*", "s3:List*"], "nope"]),
    "principal": st.sampled_from([None, {"AWS": "arn:aws:iam::111122223333:root"}, "*"]),
    "condition": st.sampled_from([None, {"Bool": {"aws:SecureTransport": "true"}}]),
})


def _doc(shapes: list[dict[str, Any]], values: list[Any]) -> dict[str, Any]:
    statements = []
    for shape, value in zip(shapes, values, strict=True):
        statement: dict[str, Any] = {"Effect": shape["effect"], "Action": shape["action"]}
        for key in shape["keys"]:
            statement[key] = value
        if shape["principal"] is not None:
            statement["Principal"] = shape["principal"]
        if shape["condition"] is not None:
            statement["Condition"] = shape["condition"]
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({"identity": st.lists(st.lists(_SHAPES, min_size=1, max_size=3), max_size=2),
                              "resource": st.one_of(st.none(), st.lists(_SHAPES, min_size=1, max_size=2)),
                              "permissionBoundary": st.one_of(st.none(), st.lists(_SHAPES, min_size=1, max_size=2))}),
       st.data())
def test_a_line_read_from_its_template_is_what_its_own_parse_makes(shape: dict[str, Any], data: Any) -> None:
    from iamgraph.errors import IamGraphError
    from iamgraph.eval.batch import _from_template, _policy_set

    def member(shapes: list[dict[str, Any]]) -> dict[str, Any]:
        return _doc(shapes, data.draw(st.lists(_VALUES, min_size=len(shapes), max_size=len(shapes))))

    for _ in range(4):  # a template is read from its second sight: the later lines of the family use it
        pol: dict[str, Any] = {"identity": [member(s) for s in shape["identity"]]}
        for name in ("resource", "permissionBoundary"):
            if shape[name] is not None:
                pol[name] = member(shape[name])
        try:
            expected: Any = _policy_set(pol, "arn:aws:s3:::b/k")
        except IamGraphError as exc:
            expected = str(exc)
        got = _from_template(pol)
        if got is not None:
            assert got == expected, pol
            _same_compiled_answers(got, expected)


def _same_compiled_answers(got: Any, expected: Any) -> None:
    """A set read from its template has its documents compiled from the template's (compiled.transient): each
    plan must hold the statements and references a plain compile makes, and every answer must be the same."""
    from iamgraph.eval import Request
    from iamgraph.eval.compiled import CompiledPolicy, compiled
    from iamgraph.eval.engine import authorize

    docs = [(np, PolicyType.IDENTITY) for np in got.identity] + [
        (np, t) for np, t in ((got.resource, PolicyType.RESOURCE), (got.permission_boundary,
                                                                  PolicyType.PERMISSION_BOUNDARY)) if np is not None]
    for action in ("s3:getobject", "s3:listbucket", "iam:passrole"):
        for np, ptype in docs:
            plan = compiled(np.policy).plan(action, ptype, np.policy_id)
            fresh = CompiledPolicy(np.policy).plan(action, ptype, np.policy_id)
            assert [(st.statement, [p.text for p in st.resources or ()], st.plain, st.star, ref) for st, ref in plan] \
                == [(st.statement, [p.text for p in st.resources or ()], st.plain, st.star, ref) for st, ref in fresh]
    for mode in Mode:
        for action, resource in (("s3:GetObject", "arn:aws:s3:::b/k"), ("s3:ListBucket", "arn:aws:s3:::a"),
                                 ("s3:GetObject", "arn:aws:s3:::u/k")):
            request = Request(principal=USER, action=action, resource=resource, resource_account="111122223333",
                              context={"aws:SecureTransport": True, "aws:username": "u"})
            assert authorize(request, got, mode=mode) == authorize(request, expected, mode=mode)


def test_lines_that_differ_in_their_resources_are_read_from_their_template() -> None:
    # The test above must not pass vacuously: lines of the bench's shape are read from their template from the
    # template's second sight, and each answer is the line's own.
    from iamgraph.eval.batch import _from_template, _policy_set

    def pol(i: int) -> dict[str, Any]:
        bucket = f"arn:aws:s3:::from-template-{i}"
        return {"identity": [{"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{bucket}/*"},
                    {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}],
                "resource": {"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                     "Action": "s3:GetObject", "Resource": [bucket, f"{bucket}/*"]}]}}

    got = [_from_template(pol(i)) for i in range(4)]
    assert got[0] is None and all(g is not None for g in got[2:])
    for i in range(2, 4):
        assert got[i] == _policy_set(pol(i), "arn:aws:s3:::b/k")
        _same_compiled_answers(got[i], _policy_set(pol(i), "arn:aws:s3:::b/k"))


# The cyclic collector during a batch (iamgraph.gcpause, the switch the graph build and the ingest share): off while the lines are read, as it was after, also
# when the reader stops early, and the young generations still collected every YOUNG_COLLECTION_LINES lines.


def test_the_collector_is_off_during_a_batch_and_on_after() -> None:
    assert gc.isenabled()
    seen = [gc.isenabled() for _ in evaluate_lines([_good_line(i) for i in range(3)], "in.jsonl")]
    assert seen == [False, False, False]
    assert gc.isenabled()
    reader = evaluate_lines([_good_line(i) for i in range(3)], "in.jsonl")
    next(reader)
    assert not gc.isenabled()
    reader.close()  # a reader left part-way
    assert gc.isenabled()


def test_a_batch_ending_inside_another_section_leaves_the_collector_off_until_that_ends() -> None:
    """One counted switch for the process: a batch that started first and ends while a graph build (or an ingest)
    is still running must not turn the collector back on under it; the last section to end does."""
    assert gc.isenabled()
    reader = evaluate_lines([_good_line(i) for i in range(3)], "in.jsonl")
    next(reader)
    with without_cyclic_gc() as owner:
        assert owner is False  # the batch switched it off
        reader.close()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_turned_off_before_stays_off() -> None:
    gc.disable()
    try:
        assert len(list(evaluate_lines([_good_line(1)], "in.jsonl"))) == 1
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_cycle_made_during_a_batch_is_freed_within_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "YOUNG_COLLECTION_LINES", 2)

    class Node:
        other: Any = None

    refs = []
    for n, _ in evaluate_lines([_good_line(i) for i in range(1, 7)], "in.jsonl"):
        if n == 1:
            a, b = Node(), Node()
            a.other, b.other = b, a  # only the cyclic collector frees these two
            refs.append(weakref.ref(a))
            del a, b
        if n == 5:
            assert refs[0]() is None


def test_a_misspelt_action_costs_its_line_an_error_not_an_answer() -> None:
    """``s3:GetObjekt`` is no S3 action (Service Authorization Reference, Amazon S3: GetObject), so a batch line asking
    for it gets an error naming the nearest actions, as ``simulate --action`` refuses it, instead of the Allowed that
    the ``s3:*`` statement would give; the lines around it are answered, and any spelling of a real action (action
    names are case-insensitive in IAM) is still answered."""
    typo = line(identity=[GOOD]) | {"id": 2}
    typo["request"] = typo["request"] | {"action": "s3:GetObjekt"}
    cased = line(identity=[GOOD]) | {"id": 3}
    cased["request"] = cased["request"] | {"action": "S3:getobject"}
    out = list(evaluate_lines([_good_line(1), orjson.dumps(typo), orjson.dumps(cased), _good_line(4)], "in.jsonl"))
    assert [r["decision"] for _, r in out] == ["Allowed", "ImplicitlyDenied", "Allowed", "Allowed"]
    bad = out[1][1]
    assert bad["error"].startswith("in.jsonl: line 2: request.action: 's3:GetObjekt' is not an action in the catalog")
    assert "did you mean s3:GetObject" in bad["error"]
    assert [r["error"] for n, r in out if n != 2] == [None, None, None]
