"""The engine's fast paths give the answers of the general code they short-cut (each checked against it)."""

from __future__ import annotations

import ipaddress
from dataclasses import fields

from hypothesis import given, settings
from hypothesis import strategies as st

from iamgraph.eval import dnf
from iamgraph.eval.conditions import _ip_in
from iamgraph.eval.patterns import _tail_tokens, tokenize
from iamgraph.eval.principals import RequestPrincipal, _classify
from iamgraph.model.arn import _ACCOUNT, Arn, account_of, arn_parts, is_account_id
from iamgraph.model.policy import ConditionClause

_NETS = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "192.168.0.0/16", "203.0.113.7/32", "2001:db8::/32")]
_V4 = tuple((int(n.network_address), int(n.netmask)) for n in _NETS if n.version == 4)


def _reference(text: str) -> bool:
    """The general reading: an address (IPv4 or IPv6) by ``ipaddress``, else a CIDR inside one of the nets."""
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        try:
            inner = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            return False
        return any(inner.version == n.version and inner.subnet_of(n) for n in _NETS)  # type: ignore[arg-type]
    return any(addr.version == n.version and addr in n for n in _NETS)


_octet = st.one_of(st.integers(0, 300).map(str), st.sampled_from(["00", "01", "010", "0x1", "", " 1", "1 ", "٣"]))
_dotted = st.lists(_octet, min_size=3, max_size=5).map(".".join)


@settings(max_examples=600, deadline=None)
@given(st.one_of(_dotted, st.text(max_size=20), st.sampled_from(["10.1.2.3", " 10.1.2.3 ", "192.168.0.0/24",
                                                                   "2001:db8::1", "10.0.0.0/7", "203.0.113.7"])))
def test_the_ipv4_fast_path_agrees_with_ipaddress(text: str) -> None:
    assert _ip_in(text, _NETS, _V4) == _reference(text), text


def test_leading_zeros_and_out_of_range_octets_are_no_address() -> None:
    # ipaddress (Python >= 3.9.5) rejects leading zeros; AWS's aws:SourceIp is always a canonical address.
    for text in ("010.1.2.3", "10.1.2.256", "10.1.2", "10.1.2.3.4"):
        assert _ip_in(text, _NETS, _V4) is False


@given(st.text(alphabet=st.sampled_from("arn:aws-iam/12x*"), max_size=40))
def test_arn_parts_is_what_arn_parse_accepts(text: str) -> None:
    parts = arn_parts(text)
    try:
        arn = Arn.parse(text)
    except Exception:
        assert parts is None
    else:
        assert parts == ["arn", arn.partition, arn.service, arn.region, arn.account, arn.resource]
    assert account_of(text) == (parts[4] if parts and len(parts[4]) == 12 and parts[4].isdigit() else None)


def test_a_scalar_value_takes_the_same_path_as_a_list_of_one() -> None:
    from iamgraph.eval.conditions import CompiledClause

    for operator, values, value in [
        ("StringEquals", ("a",), "a"), ("StringNotEquals", ("a",), "a"), ("StringLike", ("a*",), "ab"),
        ("NumericLessThan", (5,), 3), ("Bool", ("true",), True), ("IpAddress", ("10.0.0.0/8",), "10.1.1.1"),
        ("NotIpAddress", ("10.0.0.0/8",), "10.1.1.1"), ("StringEqualsIfExists", ("a",), "b"),
        ("DateLessThan", ("2030-01-01T00:00:00Z",), "2026-01-01T00:00:00Z"), ("ArnLike", ("arn:aws:s3:::*",), "x"),
    ]:
        c = CompiledClause(ConditionClause(operator=operator, key="k", values=values), True)
        assert c.evaluate({"k": value}, True) == c.evaluate({"k": [value]}, True), operator


_ACTION_TEXTS = ["*", "s3:*", "s3:Get*", "s3:GetObject", "S3:getobject", "s3:Get?bject", "*:GetObject", "s?:Get*",
                 "iam:PassRole", "ec2:*Instances", "sts:AssumeRole*", "kms:Decrypt"]
_ASKED = ["s3:getobject", "s3:putobject", "iam:passrole", "ec2:describeinstances", "sts:assumerole", "kms:decrypt",
          "sqs:getqueueurl", "s3:getobjectacl"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.lists(st.sampled_from(_ACTION_TEXTS), min_size=1, max_size=3)),
                min_size=1, max_size=6),
       st.sampled_from(_ASKED), st.sampled_from(_ASKED))
def test_the_first_actions_scan_finds_what_the_index_finds(shape: list[tuple[bool, list[str]]], first: str,
                                                           other: str) -> None:
    from iamgraph.eval.compiled import CompiledPolicy
    from iamgraph.model.policy import parse_policy

    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", ("NotAction" if negated else "Action"): actions, "Resource": "*"}
        for negated, actions in shape]}
    policy = parse_policy(doc)
    scanned = CompiledPolicy(policy).candidates(first)  # the first action asked: a scan
    indexed = CompiledPolicy(policy)
    indexed.candidates(other if other != first else "zz:none")
    assert [s.index for s in indexed.candidates(first)] == [s.index for s in scanned]
    # And both are exactly the statements whose Action/NotAction matches.
    assert [s.index for s in scanned] == [s.index for s in CompiledPolicy(policy).statements
                                          if s.action_matches(first)]


def test_action_classes_made_for_one_resource_are_not_served_for_one_a_service_rule_treats_otherwise() -> None:
    """The class cache is keyed by the service rules that may refuse an action on the resource, not by the
    resource: two roles share classes, but a service-linked role (whose policies AWS refuses to change:
    https://docs.aws.amazon.com/IAM/latest/UserGuide/using-service-linked-roles.html) gets its own."""
    from iamgraph.eval import PolicySet, PolicyType, named_policy
    from iamgraph.eval.compiled import action_classes

    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]}
    ps = PolicySet(identity=(named_policy(doc, "classes-by-rule", PolicyType.IDENTITY),))
    actions = ["iam:AttachRolePolicy", "iam:GetRole", "iam:TagRole"]
    plain = "arn:aws:iam::111122223333:role/app"
    slr = "arn:aws:iam::111122223333:role/aws-service-role/ops.amazonaws.com/AWSServiceRoleForOps"
    for resource in (plain, "arn:aws:iam::111122223333:role/other", slr, plain):
        classes = action_classes(ps, actions, resource)
        alone = ["iam:AttachRolePolicy"] in classes
        assert alone == (resource == slr), (resource, classes)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["$", "{", "}", "${", "aws:username", "*", "?", "'d'", ",", " ", "a", ":", "/"]),
                max_size=16).map("".join))
def test_a_string_split_from_its_first_variable_on_is_split_as_a_whole(text: str) -> None:
    # tokenize shares the split of the part from the first "${" (the part distinct documents repeat); the
    # split of the whole text is the general code (_tail_tokens is that code, whatever text it is given).
    _tail_tokens.cache_clear()
    whole = _tail_tokens(text) if "${" in text else (text,)
    assert tokenize(text, variables=True) == whole
    assert tokenize(text, variables=True) == whole  # again, from the shared part


def test_classify_builds_the_principal_the_class_builds() -> None:
    # _classify sets the slots directly (model/slots.py); the class's __post_init__ derives is_iam and
    # is_service_linked_role, so each answer must equal the one the class makes from the same fields.
    for text in ("anonymous", "lambda.amazonaws.com", "arn:aws:iam::111122223333:root",
                 "arn:aws:iam::111122223333:user/a/alice", "arn:aws:iam::111122223333:role/aws-service-role/x/slr",
                 "arn:aws:iam::111122223333:saml-provider/idp", "arn:aws:sts::111122223333:assumed-role/r/s",
                 "arn:aws:sts::111122223333:federated-user/bob"):
        made = _classify(text, None)
        given = {f.name: getattr(made, f.name) for f in fields(RequestPrincipal)
                 if f.name not in ("is_iam", "is_service_linked_role")}
        assert made == RequestPrincipal(**given), text
    assert _classify("arn:aws:iam::111122223333:role/aws-service-role/x/slr", None).is_service_linked_role


@given(st.one_of(st.text(alphabet=st.sampled_from("0123456789٣\n a"), max_size=14), st.from_regex(r"\d{12}")))
def test_the_account_id_fast_path_agrees_with_the_pattern(text: str) -> None:
    assert is_account_id(text) == bool(_ACCOUNT.match(text)), text


_role_part = st.lists(st.sampled_from(["r", "role", "/", ":", " ", "a.b", "x"]), max_size=4).map("".join)
_session = st.lists(st.sampled_from(["s", "1", ":", " ", "@", "-", "=", ",", "."]), max_size=4).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["arn:aws:sts::111122223333:assumed-role/", "arn:aws-cn:sts::111122223333:assumed-role/",
                        "arn:aws:sts::11112222333:assumed-role/", "arn:aws:sts::111122223333:federated-user/",
                        "arn:aws:iam::111122223333:role/"]),
       _role_part, _session, _session)
def test_a_new_session_of_a_role_seen_before_is_the_principal_its_own_text_makes(
        prefix: str, role: str, first: str, later: str) -> None:
    # classify makes a new session of a known role from the role's first session (principals._SESSIONS): what
    # it answers must be what the general parse answers for the session's own text, refusals included.
    from iamgraph.errors import InputError
    from iamgraph.eval import principals

    principals._CACHE.clear()
    principals._SESSIONS.clear()
    for text in (f"{prefix}{role}/{first}", f"{prefix}{role}/{later}"):
        try:
            expected: RequestPrincipal | str = _classify(text, None)
        except InputError as exc:
            expected = str(exc)
        try:
            got: RequestPrincipal | str = principals.classify(text)
        except InputError as exc:
            got = str(exc)
        assert got == expected, text


def test_sessions_of_one_role_share_its_derived_context_and_nothing_else() -> None:
    from iamgraph.eval.engine import _derived_context, derived_context
    from iamgraph.eval.principals import classify

    texts = ["arn:aws:sts::111122223333:assumed-role/a/s1", "arn:aws:sts::111122223333:assumed-role/a/s2",
             "arn:aws:sts::111122223333:assumed-role/b/s1", "arn:aws:sts::444455556666:assumed-role/a/s1",
             "arn:aws:iam::111122223333:user/alice", "arn:aws:iam::111122223333:user/bob",
             "arn:aws:iam::111122223333:role/a", "arn:aws:iam::111122223333:root", "anonymous",
             "lambda.amazonaws.com", "sns.amazonaws.com", "cognito-identity.amazonaws.com",
             "arn:aws:sts::111122223333:federated-user/carol", "arn:aws:iam::111122223333:saml-provider/idp"]
    principals = [classify(t) for t in texts]
    principals.append(classify("arn:aws:sts::111122223333:assumed-role/a/s3",
                               role_arn="arn:aws:iam::111122223333:role/team/a"))
    for _ in range(2):  # the second round from the kept entries
        for p in principals:
            for account in ("111122223333", "999988887777", None):
                got = derived_context(p, account)
                assert got == _derived_context(p, account), (p.raw, account)
                got["aws:sourceip"] = "10.0.0.1"  # the caller adds the request's keys to its own dict
                assert "aws:sourceip" not in derived_context(p, account)


def test_plain_statements_are_matched_as_the_general_checks_match_them() -> None:
    # CompiledStatement.plain lets the engine skip a statement's checks: each statement marked plain must get
    # from _Evaluation.statement the match the short cut gives (TRUE, the caller named directly), in both modes,
    # and statements with anything to check must not be marked.
    from iamgraph.eval import Mode, PolicyType, Request, named_policy
    from iamgraph.eval.compiled import compiled
    from iamgraph.eval.engine import _Evaluation
    from iamgraph.eval.principals import Strength
    from iamgraph.eval.types import PolicySet, StatementRef

    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:*", "Resource": ["*", "*"]},
        {"Effect": "Allow", "Action": "s3:*", "NotResource": "*"},
        {"Effect": "Allow", "Action": "s3:*", "Resource": ["*", "arn:aws:s3:::b/*"]},
        {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}},
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:root"}},
        {"Effect": "Deny", "Action": "s3:*", "NotResource": ["*"]},
    ]}
    scp = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*"}]}
    plain = []
    for d, ptype in ((doc, PolicyType.RCP), (scp, PolicyType.SCP)):  # both take statements with or without Principal
        np = named_policy(d, f"plain-{ptype}", ptype)
        for cst in compiled(np.policy).statements:
            plain.append(cst.plain)
            if not cst.plain:
                continue
            ref = StatementRef(policy_type=ptype, policy_id=np.policy_id, statement_index=cst.index)
            for mode in Mode:
                for principal in ("arn:aws:iam::111122223333:user/alice", "anonymous"):
                    ev = _Evaluation(Request(principal=principal, action="s3:GetObject",
                                             resource="arn:aws:s3:::c/k"), PolicySet(), mode)
                    for check_principal in (False, True):
                        m = ev.statement(cst, ref, check_principal)
                        assert m is not None and m.formula == dnf.TRUE and m.strength == Strength.DIRECT
    assert plain == [True, True, False, False, False, False, False, False, False, True]


_tail_text = st.lists(st.sampled_from(["${aws:username}", "${aws:PrincipalTag/team, 'x'}", "${*}", "${", "}", "*",
                                       "?", ":", "/", "arn:aws:s3:::", "b-1", "$"]), max_size=8).map("".join)


@settings(max_examples=400, deadline=None)
@given(_tail_text, st.booleans())
def test_a_pattern_with_variables_derives_from_its_tail_what_its_tokens_give(text: str, arn: bool) -> None:
    # Pattern takes what it derives from the part from the first "${" on from a cache (patterns._tail_facts): it
    # must equal what the general code derives from the whole text's tokens.
    from iamgraph.eval.patterns import Pattern, _regex_pieces, _Var, has_vars

    p = Pattern(text, True, arn)
    tokens = tokenize(text, variables=True)
    assert p.tokens == tokens
    assert p.var_keys == frozenset(t.key for t in tokens if isinstance(t, _Var) and t.literal is None)
    if has_vars(tokens):
        lits = "".join(t for t in tokens if isinstance(t, str))
        last = tokens[-1]
        dyn_prefix = isinstance(last, str) and last.endswith("*") and "?" not in lits and lits.count("*") == 1
        assert p._dyn_prefix == dyn_prefix
        assert p._pieces == (() if dyn_prefix else _regex_pieces(tokens, arn=arn))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_ACTION_TEXTS), min_size=1, max_size=3),
       st.lists(st.sampled_from(_ASKED), min_size=1, max_size=6))
def test_an_action_lists_remembered_answers_are_its_matchers_answers(actions: list[str], asked: list[str]) -> None:
    # Statements naming the same Action or NotAction list share one memo of "a matcher matches this action"
    # (compiled._action_patterns): each answer, asked in any order, by Action and NotAction statements alike,
    # must be what fresh matchers say.
    from iamgraph.eval.compiled import CompiledStatement, _ActionPattern
    from iamgraph.model.policy import Effect, Statement

    stmts = [CompiledStatement(Statement(index=0, effect=Effect.ALLOW, resource=("*",), **{key: tuple(actions)}), True)
             for key in ("action", "not_action", "action")]
    for a in asked + asked:
        matched = any(_ActionPattern(t).matches(a) for t in actions)
        for s in stmts:
            assert s.action_matches(a) == (matched != s.not_action), (actions, a)


def test_a_statement_naming_every_resource_is_matched_as_its_resource_checks_match_it() -> None:
    # CompiledStatement.star lets the engine skip the resource check: with and without the short cut, each
    # statement must get the same answer from _Evaluation.statement, in both modes, with and without the key of
    # a variable, and only statements with "*" among their resources and no variable may be marked.
    from iamgraph.eval import Mode, PolicyType, Request, named_policy
    from iamgraph.eval.compiled import compiled
    from iamgraph.eval.engine import _Evaluation
    from iamgraph.eval.types import PolicySet, StatementRef

    resources = [{"Resource": "*"}, {"Resource": ["arn:aws:s3:::b/*", "*"]}, {"NotResource": "*"},
                 {"NotResource": ["arn:aws:s3:::b/*", "*"]}, {"Resource": ["*", "arn:aws:s3:::${aws:username}/*"]},
                 {"Resource": "arn:aws:s3:::c/*"}, {"Resource": "arn:aws:s3:::${aws:username}/*"}]
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": effect, "Action": "s3:*", **res, "Condition": {"StringEquals": {"aws:PrincipalTag/t": "x"}}}
        for effect in ("Allow", "Deny") for res in resources]}
    np = named_policy(doc, "star-resources", PolicyType.IDENTITY)
    marked = []
    for cst in compiled(np.policy).statements:
        marked.append(cst.star)
        ref = StatementRef(policy_type=PolicyType.IDENTITY, policy_id=np.policy_id, statement_index=cst.index)
        answers = []
        for star in (cst.star, False):
            cst.star = star
            for mode in Mode:
                for ctx in ({"aws:PrincipalTag/t": "x", "aws:username": "c"}, {"aws:PrincipalTag/t": "x"}, {}):
                    ev = _Evaluation(Request(principal="arn:aws:iam::111122223333:user/c", action="s3:GetObject",
                                             resource="arn:aws:s3:::c/k", context=ctx), PolicySet(), mode)
                    m = ev.statement(cst, ref, False)
                    answers.append(None if m is None else (m.formula, m.strength, ev.atom_list))
        half = len(answers) // 2
        assert answers[:half] == answers[half:], cst.index
    assert marked == [True, True, False, False, False, False, False] * 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.lists(st.sampled_from(_ACTION_TEXTS), min_size=1, max_size=3)),
                min_size=1, max_size=6),
       st.lists(st.sampled_from(_ASKED), min_size=1, max_size=3))
def test_a_document_seen_once_compiles_only_what_its_first_action_needs(shape: list[tuple[bool, list[str]]],
                                                                      asked: list[str]) -> None:
    # A first-sight document (compiled.transient) compiles only the statements whose Action/NotAction can match the
    # first action asked about; every answer is the one of the document compiled whole, for that action and later
    # ones, and every statement a plan holds is the very object ``statements`` gives (templates find places by it).
    from iamgraph.eval.compiled import CompiledPolicy
    from iamgraph.eval.types import PolicyType
    from iamgraph.model.policy import parse_policy

    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", ("NotAction" if negated else "Action"): actions, "Resource": "*",
         "Condition": {"StringEquals": {"aws:PrincipalTag/team": f"t{i}"}}}
        for i, (negated, actions) in enumerate(shape)]}
    policy = parse_policy(doc)
    whole = CompiledPolicy(policy)
    lazy = CompiledPolicy(policy, one_document=True)
    plans = [lazy.plan(a, PolicyType.IDENTITY, "p") for a in asked]
    for a, plan in zip(asked, plans, strict=True):
        assert [(st.index, st.statement, ref) for st, ref in plan] == [
            (st.index, st.statement, ref) for st, ref in whole.plan(a, PolicyType.IDENTITY, "p")]
    assert [st.statement for st in lazy.statements] == list(policy.statements)
    held = {id(st) for st in lazy.statements}
    assert all(id(st) in held for plan in plans for st, _ in plan)


def test_a_statement_whose_action_cannot_match_is_not_compiled_for_a_document_seen_once() -> None:
    from iamgraph.eval.compiled import CompiledPolicy
    from iamgraph.eval.types import PolicyType
    from iamgraph.model.policy import parse_policy

    policy = parse_policy({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*",
         "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}},
        {"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"}]})
    lazy = CompiledPolicy(policy, one_document=True)
    assert [st.index for st, _ in lazy.plan("s3:getobject", PolicyType.IDENTITY, "p")] == [0]
    assert lazy._some is not None and [st is not None for st in lazy._some] == [True, False, False]
    assert [st.index for st in lazy.candidates("iam:passrole")] == [2]  # a second action: compiled whole
    assert lazy._statements is not None and len(lazy._statements) == 3
