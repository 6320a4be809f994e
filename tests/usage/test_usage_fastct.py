"""The reader's C path (``iamgraph/usage/_fastct.c``) against its Python path: on any file, the C path either refuses
it (the Python path then reads it) or leaves the reader exactly as the Python path does: the same groups, in the same
order, with the same first and last times and counts, the same eventIDs in each, the same times, duplicates and
skipped records.

The files are generated from records with random nesting, escapes, non-ASCII text, missing fields and fields of the
wrong type, then cut short, given a stray byte, a key twice or an escaped key. A file the C path cannot be sure of
must be refused, never read differently: CloudTrail logs are attacker-influenced input (request parameters, user
agents, resource names), so the C scanner is also run under Python's debug allocator in CI's history (see
docs/usage.md).
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import json
import os
import random
import subprocess
import sys
import uuid
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from usage_ct_logs import ACCT, event, role_identity, user_identity

from iamgraph.usage import ingest
from iamgraph.usage.ingest import BAD_FILE_ERRORS, CloudTrailReader, event_time_problem
from iamgraph.usage.sql import REQUEST_PARAMETER_FIELDS

FAST = ingest._FASTCT


@pytest.fixture(autouse=True)
def _needs_the_c_path() -> None:
    if FAST is None:
        why = ("the C path is not built (no compiler at install time?)" if not os.environ.get("IAMGRAPH_PURE_INGEST")
               else "IAMGRAPH_PURE_INGEST is set")
        if os.environ.get("CI") and not os.environ.get("IAMGRAPH_PURE_INGEST"):
            pytest.fail(f"CI must test the reader's C path: {why}")
        pytest.skip(why)


@contextlib.contextmanager
def _path(fast: bool) -> Iterator[None]:
    saved = ingest._FASTCT
    ingest._FASTCT = saved if fast else None
    try:
        yield
    finally:
        ingest._FASTCT = saved


def _read(files: list[bytes], fast: bool, drop_after: int | None = None) -> tuple[list[Any], CloudTrailReader]:
    """Each file into one reader, in order (a bad file's error kept as its outcome); with ``drop_after``, the first
    of the eventIDs counted so far are taken back after that many files, as a batch does."""
    with _path(fast):
        reader = CloudTrailReader()
        outcomes: list[Any] = []
        for i, data in enumerate(files):
            if drop_after == i:
                outcomes.append(("dropped", reader.drop(list(reader.events)[:2])))
            try:
                outcomes.append(reader.add_file(data))
            except BAD_FILE_ERRORS as exc:
                outcomes.append((type(exc).__name__, str(exc)))
    return outcomes, reader


def _view(r: CloudTrailReader) -> Any:
    key_of = {id(g): k for k, g in r.groups.items()}
    return (list(r.groups.items()), [(e, key_of[id(g)]) for e, g in r.events.items()], dict(r._times),
            [(key_of[id(g)], t) for g, t in r._no_id], r.duplicates, r.bad)


def _same(files: list[bytes], drop_after: int | None = None) -> CloudTrailReader:
    """Reads ``files`` both ways, asserts the same outcome; returns the C path's reader."""
    fast_out, fast = _read(files, True, drop_after)
    slow_out, slow = _read(files, False, drop_after)
    assert fast_out == slow_out
    assert _view(fast) == _view(slow)
    return fast


def _gz(doc: Any) -> bytes:
    return gzip.compress(json.dumps(doc).encode())


def _ordinary(n: int, *, first_id: int = 0) -> list[dict[str, Any]]:
    app = role_identity("app")
    out = []
    for i in range(n):
        who = app if i % 3 else user_identity(f"u{i % 2}")
        ev = event(who, "s3.amazonaws.com", "GetObject", params={"bucketName": "b", "key": f"k{i % 4}"},
                   time=f"2024-03-05T10:{i % 60:02d}:00Z", event_id=str(uuid.UUID(int=first_id + i + 1)))
        if i % 5 == 0:
            ev["resources"] = [{"ARN": f"arn:aws:s3:::b/k{i % 4}", "type": "AWS::S3::Object"}, {"type": "x"}]
        out.append(ev)
    return out


# ---------------------------------------------------------------- the C path is taken, and refuses what it must


def test_the_c_path_reads_ordinary_files_as_the_python_path_does() -> None:
    files = [_gz({"Records": _ordinary(40)}), _gz({"Records": _ordinary(40, first_id=40)}),
             _gz({"Records": _ordinary(10, first_id=70)})]  # its first 10 IDs counted before: duplicates
    reader = _same(files)
    assert (reader.fast_files, reader.fast_refused) == (3, 0)
    assert reader.duplicates == 10 and sum(g[2] for g in reader.groups.values()) == 80


def test_the_c_path_keeps_principal_id_only_without_an_arn() -> None:
    saml = [event({"type": "SAMLUser", "principalId": f"p=:{who}"}, "sts.amazonaws.com", "GetCallerIdentity",
                  event_id=f"id-{who}") for who in ("jane", "joe", "jane2")]
    two_sessions = [event({**user_identity("alice"), "principalId": p}, "sts.amazonaws.com", "GetCallerIdentity",
                          event_id=f"id-{p}") for p in ("AIDAONE", "AIDATWO")]
    reader = _same([_gz({"Records": saml + two_sessions})])
    assert reader.fast_files == 1 and len(reader.groups) == 4


def test_a_kept_string_with_escapes_is_decoded_as_msgspec_decodes_it() -> None:
    odd = 'we,ird"bucket\nname/é\t\\ \u2028 \x01'
    recs = [event(role_identity("app"), "s3.amazonaws.com", "GetObject", params={"bucketName": odd, "key": "\x00"},
                  event_id="e1")]
    for ensure_ascii in (True, False):
        reader = _same([gzip.compress(json.dumps({"Records": recs}, ensure_ascii=ensure_ascii).encode())])
        assert reader.fast_files == 1
        ((key, _),) = reader.groups.items()
        assert key[6].bucketName == odd


REFUSED = {
    "invalid UTF-8 in a skipped string": b'{"Records": [{"eventID": "a", "eventTime": "2024-03-05T10:00:00Z", '
                                         b'"userAgent": "\xff"}]}',
    "an escaped surrogate": b'{"Records": [{"eventID": "a", "eventTime": "2024-03-05T10:00:00Z", '
                            b'"userAgent": "\\ud83d\\ude00"}]}',
    "a number where a string is kept": b'{"Records": [{"eventID": "a", "eventTime": "2024-03-05T10:00:00Z", '
                                       b'"eventName": 5}]}',
    "a kept key twice": b'{"Records": [{"eventID": "a", "eventTime": "2024-03-05T10:00:00Z", '
                        b'"eventName": "A", "eventName": "B"}]}',
    "an escaped key": b'{"Records": [{"eventID": "a", "eventTime": "2024-03-05T10:00:00Z", '
                      b'"event\\u004eame": "A"}]}',
    "nesting deeper than the scanner goes": b'{"Records": [{"eventID": "a", "eventTime": "2024-03-05T10:00:00Z", '
                                            b'"x": ' + b"[" * 100 + b"]" * 100 + b"}]}",
    "trailing bytes": b'{"Records": []} x',
    "a control character in a string": b'{"Records": [{"eventID": "a\x01", "eventTime": "2024-03-05T10:00:00Z"}]}',
    "Records null": b'{"Records": null}',
    "no Records": b'{"records": []}',
    "a record that is not an object": b'{"Records": [1]}',
    "an eventTime that is not a string": b'{"Records": [{"eventID": "a", "eventTime": 1709632800}]}',
    "an eventID that is not a string": b'{"Records": [{"eventID": 7, "eventTime": "2024-03-05T10:00:00Z"}]}',
    "a resource that is not an object": b'{"Records": [{"eventID": "a", "eventTime": "2024-03-05T10:00:00Z", '
                                        b'"resources": [null]}]}',
    "invalid JSON": b'{"Records": [{"eventID": "a", "eventTime": "2024-03-05T10:00:00Z",}]}',
    "a number with a leading zero": b'{"Records": [{"eventID": "a", "eventTime": "2024-03-05T10:00:00Z", "n": 01}]}',
}


@pytest.mark.parametrize("raw", REFUSED.values(), ids=REFUSED.keys())
def test_the_c_path_refuses_what_it_cannot_be_sure_of(raw: bytes) -> None:
    assert FAST is not None
    groups: dict[Any, Any] = {}
    assert FAST.Grouper(REQUEST_PARAMETER_FIELDS, ingest._fast_key).read(raw, groups, {}) is None
    assert groups == {}
    reader = _same([gzip.compress(raw)])
    assert reader.fast_files == 0


# Records the Python path skips or counts apart, one at a time among ordinary ones: the C path reads such a file
# record by record, as the Python path does (it used to refuse the whole file).
_GOOD = b'"eventTime": "2024-03-05T10:00:00Z", "eventSource": "s3.amazonaws.com", "eventName": "GetObject"'
ODD_RECORDS = {
    "no eventTime": b'{"eventID": "b", "eventName": "GetObject"}',
    "a null eventTime": b'{"eventID": "b", "eventTime": null}',
    "an eventTime that is no day": b'{"eventID": "b", "eventTime": "2024-02-30T10:00:00Z"}',
    "an eventTime with an offset": b'{"eventID": "b", "eventTime": "2024-03-05T10:00:00+00:00"}',
    "an empty eventTime": b'{"eventID": "b", "eventTime": ""}',
    "no eventID": b'{' + _GOOD + b'}',
    "a null eventID": b'{"eventID": null, ' + _GOOD + b'}',
    "an eventID twice in the file": b'{"eventID": "a", ' + _GOOD + b'}',
    "an eventID counted in an earlier file": b'{"eventID": "z", ' + _GOOD + b'}',
    "a bad time, then its eventID again with a good one": b'{"eventID": "c", "eventTime": "x"}, '
                                                          b'{"eventID": "c", ' + _GOOD + b'}',
}


@pytest.mark.parametrize("odd", ODD_RECORDS.values(), ids=ODD_RECORDS.keys())
def test_odd_records_are_taken_one_by_one_as_the_python_path_takes_them(odd: bytes) -> None:
    first = gzip.compress(b'{"Records": [{"eventID": "z", ' + _GOOD + b'}]}')
    raw = b'{"Records": [{"eventID": "a", ' + _GOOD + b'}, ' + odd + b', {"eventID": "d", ' + _GOOD + b'}]}'
    reader = _same([first, gzip.compress(raw)])
    assert (reader.fast_files, reader.fast_refused) == (2, 0)
    assert reader.duplicates + sum(reader.bad.values()) + len(reader._no_id) > 0  # the odd record did count apart


def test_huge_strings_kept_and_skipped() -> None:
    big = "x" * 5_000_000 + "é" + "\\" * 1000
    recs = [event(role_identity("app"), "s3.amazonaws.com", "GetObject", params={"bucketName": big, "other": big},
                  event_id="e1"),
            {**event(role_identity("app"), "s3.amazonaws.com", "GetObject", event_id="e2"), "userAgent": big}]
    reader = _same([_gz({"Records": recs})])
    assert reader.fast_files == 1


def test_a_batch_that_takes_events_back_then_reads_on() -> None:
    """``drop`` may delete groups: the C path's table of keys is discarded with them, so later files count into
    the reader's groups as they are then."""
    files = [_gz({"Records": _ordinary(6)}), _gz({"Records": _ordinary(6, first_id=6)}),
             _gz({"Records": _ordinary(6, first_id=12)})]
    reader = _same(files, drop_after=1)
    assert reader.fast_files == 3


# ---------------------------------------------------------------- generated files


_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=10)
_STR = st.one_of(st.sampled_from(["a", "b", "", 'q"uote', "back\\slash", "é", "\x00", "\n", "日本", "😀", "/",
                                  "arn:aws:iam::111122223333:role/app"]), _TEXT)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _STR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_STR, inner, max_size=3),
    max_leaves=6,
)
_KEPT = st.one_of(_STR, _STR, _STR, st.none(), _JSON)
_TIME = st.one_of(st.sampled_from(["2024-03-05T10:00:00Z", "2024-03-05T10:00:01Z", "2024-03-05T09:59:59.5Z",
                                   "2024-02-30T00:00:00Z", "2024-03-05 10:00:00", "2024-03-05T24:00:00Z"]),
                  st.sampled_from(["2024-03-05T10:00:00Z"]), _KEPT)
_ID = st.one_of(st.sampled_from([f"id-{i}" for i in range(8)]), st.sampled_from(["id-é", "id-\\"]), _KEPT)


def _obj(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


_ISSUER = st.one_of(st.none(), _JSON, _obj({"arn": _KEPT, "userName": _KEPT, "type": _STR}))
_SESSION = st.one_of(st.none(), _JSON, _obj({"sessionIssuer": _ISSUER, "attributes": _JSON}))
_IDENTITY = st.one_of(st.none(), _JSON, _obj({
    "type": st.one_of(st.sampled_from(["AssumedRole", "IAMUser", "AWSService"]), _KEPT), "principalId": _KEPT,
    "arn": st.one_of(st.none(), st.sampled_from(["arn:a", "arn:b"]), _KEPT), "accountId": _KEPT,
    "invokedBy": _KEPT, "userName": _STR, "sessionContext": _SESSION,
}))
_PARAMS = st.one_of(st.none(), _JSON, _obj({**{f: _KEPT for f in REQUEST_PARAMETER_FIELDS}, "other": _JSON}))
_RESOURCES = st.one_of(st.none(), _JSON, st.lists(st.one_of(_obj({"ARN": _KEPT, "type": _STR}), _JSON), max_size=3))
_RECORD = _obj({
    "eventID": _ID, "eventTime": _TIME, "eventSource": st.one_of(st.sampled_from(["s3.amazonaws.com"]), _KEPT),
    "eventName": st.one_of(st.sampled_from(["GetObject", "PutObject"]), _KEPT), "awsRegion": _KEPT,
    "errorCode": _KEPT, "recipientAccountId": st.one_of(st.just(ACCT), _KEPT), "userIdentity": _IDENTITY,
    "requestParameters": _PARAMS, "resources": _RESOURCES, "userAgent": _STR, "responseElements": _JSON,
})


# Records as CloudTrail writes them (every kept field a string or null, a good time): the C path must read these, so
# their variety (escapes, non-ASCII, missing parts, null parts, other fields of any shape) is where it is tested.
_TAME = st.one_of(_STR, _STR, st.none())
_TAME_RECORD = _obj({
    "eventSource": st.one_of(st.sampled_from(["s3.amazonaws.com", "iam.amazonaws.com"]), _TAME),
    "eventName": st.one_of(st.sampled_from(["GetObject", "PutObject"]), _TAME), "awsRegion": _TAME,
    "errorCode": _TAME, "recipientAccountId": st.one_of(st.just(ACCT), _TAME),
    "userIdentity": st.one_of(st.none(), _obj({
        "type": st.one_of(st.sampled_from(["AssumedRole", "IAMUser"]), _TAME), "principalId": _TAME,
        "arn": st.one_of(st.sampled_from(["arn:a", "arn:b"]), _TAME), "accountId": _TAME, "invokedBy": _TAME,
        "userName": _STR, "sessionContext": st.one_of(st.none(), _obj({
            "sessionIssuer": st.one_of(st.none(), _obj({"arn": _TAME, "userName": _TAME, "type": _STR})),
            "attributes": _JSON})),
    })),
    "requestParameters": st.one_of(st.none(), _obj({**{f: _TAME for f in REQUEST_PARAMETER_FIELDS[:6]},
                                                     "x-amz-copy-source": _TAME, "other": _JSON})),
    "resources": st.one_of(st.none(), st.lists(_obj({"ARN": _TAME, "type": _STR}), max_size=3)),
    "userAgent": _STR, "responseElements": _JSON,
})


@st.composite
def _tame_records(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Mostly good records with new IDs; with ``odd``, also records the readers skip or count apart: no or a bad
    eventTime, no or a null eventID, an eventID given before in the file or in an earlier one (IDs from a small
    range), which the C path takes record by record."""
    records = draw(st.lists(_TAME_RECORD, max_size=8))
    odd = draw(st.booleans())
    ids = draw(st.lists(st.integers(0, 12 if odd else 400), unique=not odd, min_size=len(records),
                        max_size=len(records)))
    for r, i in zip(records, ids, strict=True):
        r["eventID"] = f"id-{i}"
        r["eventTime"] = draw(st.sampled_from(["2024-03-05T10:00:00Z", "2024-03-05T10:00:01Z",
                                               "2024-03-05T09:59:59.5Z", "2024-03-06T00:00:00.123456Z"]))
        if odd:
            what = draw(st.integers(0, 9))
            if what == 0:
                del r["eventID"]
            elif what == 1:
                r["eventID"] = None
            elif what == 2:
                del r["eventTime"]
            elif what == 3:
                r["eventTime"] = draw(st.sampled_from([None, "", "2024-02-30T00:00:00Z", "2024-03-05T10:00:00",
                                                       "2024-03-05T24:00:00Z", "2024-03-05T10:00:00.1234567Z"]))
    return records


@st.composite
def _file(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 3)):
        records = draw(_tame_records())
    else:
        records = draw(st.lists(st.one_of(_RECORD, _RECORD, _RECORD, _JSON), max_size=6))
    doc: Any = {"Records": records}
    if draw(st.integers(0, 9)) == 0:
        doc = draw(st.sampled_from([{"Records": None}, [], {"other": 1, "Records": records}, {"Records": records,
                                                                                              "x": [1.5, None]}]))
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, None, 1])))
    raw = text.encode()
    mutation = draw(st.integers(0, 19))
    if mutation == 0 and raw:  # cut short
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif mutation == 1:  # a stray byte
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at:]
    elif mutation == 2 and raw:  # a byte replaced
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1:]
    elif mutation == 3:  # a kept key twice
        for key in (b'"eventName": ', b'"arn": ', b'"bucketName": ', b'"eventID": '):
            if key in raw:
                raw = raw.replace(key, key + b'"dup", ' + key, 1)
                break
    elif mutation == 4:  # a kept key spelled with an escape
        raw = raw.replace(b'"eventName"', b'"event\\u004eame"', 1)
    return gzip.compress(raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(files=st.lists(_file(), min_size=1, max_size=3), drop_after=st.one_of(st.none(), st.integers(1, 2)))
def test_generated_files_read_by_the_c_path_or_refused_never_read_differently(files: list[bytes],
                                                                               drop_after: int | None) -> None:
    reader = _same(files, drop_after)
    _GENERATED["files"] += len(files)
    _GENERATED["read_by_c"] += reader.fast_files
    if reader.fast_files and (reader.duplicates or reader.bad or reader._no_id):
        _GENERATED["odd_read_by_c"] += 1


_GENERATED = {"files": 0, "read_by_c": 0, "odd_read_by_c": 0}


def test_the_generated_files_reached_the_c_path_with_odd_records() -> None:
    """Guards the test above against passing vacuously: many files were read by the C path (not refused), and many
    readers counted skipped records, duplicates or records without an ID while the C path read files."""
    if _GENERATED["files"] == 0:
        pytest.skip("run with the generated-files test")
    assert _GENERATED["read_by_c"] >= 100, _GENERATED
    assert _GENERATED["odd_read_by_c"] >= 20, _GENERATED


_TIMES = st.one_of(
    st.from_regex(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{0,8})?Z?\Z"),
    st.builds(lambda y, m, d, h, mi, s, f: f"{y:04d}-{m:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{f}Z",
              st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 24), st.integers(0, 60),
              st.integers(0, 60), st.sampled_from(["", ".", ".5", ".123456", ".1234567"])),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
)


@settings(max_examples=2000, deadline=None)
@given(text=_TIMES)
def test_the_c_time_check_is_event_time_problem(text: str) -> None:
    assert FAST is not None
    assert FAST.event_time_ok(text.encode()) == (event_time_problem(text) is None)


# ---------------------------------------------------------------- keys built to collide in the C path's hash tables


_M64 = (1 << 64) - 1
_K0, _M1 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9


def _step(h: int, w: int) -> int:
    """One 8-byte block of the C path's first hash (unkeyed: anyone could compute it)."""
    h = ((h ^ w) * _M1) & _M64
    return h ^ (h >> 31)


def _unstep(t: int) -> int:
    """x with ``_step(0, x) == t``: the block's xor-shift and multiplication both invert."""
    x = t
    for _ in range(3):  # x ^ (x >> 31) inverts in ceil(64 / 31) rounds
        x = t ^ (x >> 31)
    return (x * pow(_M1, -1, 1 << 64)) & _M64


def _colliding_bucket_names(n: int) -> list[str]:
    """n ASCII bucket names whose group keys (the C path's bytes: five absent strings, no identity, requestParameters
    with only bucketName, no resources) had the same 64-bit hash under the C path's first, unkeyed hash: the name is
    the key's 3rd and 4th 8-byte block, the 4th chosen to bring the hash state back to the first name's."""
    assert REQUEST_PARAMETER_FIELDS[0] == "bucketName"
    h = _K0 ^ (16 + 16 + len(REQUEST_PARAMETER_FIELDS))  # the key's length: 16 bytes, the name, then one per field
    h = _step(_step(h, int.from_bytes(b"\0" * 6 + b"\1\1", "little")), 16)  # presence bytes, then the name's length
    rng = random.Random(16)
    first = bytes(rng.randrange(0x20, 0x7F) for _ in range(16))
    target = _unstep(_step(_step(h, int.from_bytes(first[:8], "little")), int.from_bytes(first[8:], "little")))
    names = [first]
    while len(names) < n:
        a = bytes(rng.randrange(0x20, 0x7F) for _ in range(8))
        b = (_step(h, int.from_bytes(a, "little")) ^ target).to_bytes(8, "little")
        if max(b) < 0x80:  # ASCII (json.dumps escapes the control characters; the C path decodes them back)
            names.append(a + b)
    return [x.decode() for x in names]


def _bucket_records(names: list[str], first_id: int = 0) -> list[dict[str, Any]]:
    return [{"eventID": f"id-{first_id + i}", "eventTime": "2024-03-05T10:00:00Z", "requestParameters": {
        "bucketName": name}} for i, name in enumerate(names)]


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _M64


def _siphash13(k0: int, k1: int, data: bytes) -> int:
    """SipHash-1-3 (https://www.aumasson.jp/siphash/siphash.pdf), as _fastct.c's ``hash_bytes``; checked against
    CPython's own bytes hash below."""
    v = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D, k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]

    def rnd() -> None:
        v[0] = (v[0] + v[1]) & _M64
        v[1] = _rotl(v[1], 13) ^ v[0]
        v[0] = _rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & _M64
        v[3] = _rotl(v[3], 16) ^ v[2]
        v[0] = (v[0] + v[3]) & _M64
        v[3] = _rotl(v[3], 21) ^ v[0]
        v[2] = (v[2] + v[1]) & _M64
        v[1] = _rotl(v[1], 17) ^ v[2]
        v[2] = _rotl(v[2], 32)

    end = len(data) - len(data) % 8
    for i in range(0, end, 8):
        m = int.from_bytes(data[i:i + 8], "little")
        v[3] ^= m
        rnd()
        v[0] ^= m
    b = (len(data) << 56 | int.from_bytes(data[end:], "little")) & _M64
    v[3] ^= b
    rnd()
    v[0] ^= b
    v[2] ^= 0xFF
    for _ in range(3):
        rnd()
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def test_the_reference_siphash_is_cpythons() -> None:
    """With PYTHONHASHSEED=0 CPython's key is zero and ``hash(bytes)`` is SipHash-1-3 (PEP 456), as a signed int
    (the empty string hashes to 0 there, not through SipHash)."""
    script = "import sys; print(*(hash(bytes(range(n))) for n in range(1, 20)))"
    out = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONHASHSEED": "0"},
                         capture_output=True, text=True, check=True).stdout.split()
    assert len(out) == 19
    for n, h in enumerate(out, start=1):
        assert int(h) % (1 << 64) == _siphash13(0, 0, bytes(range(n)))


def test_the_hash_key_is_drawn_per_process() -> None:
    """Keyed per process: keys built to collide in one process (or offline) do not collide in another."""
    script = "from iamgraph.usage import _fastct; print(*_fastct._hash_key())"
    keys = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
            for _ in range(2)}
    assert len(keys) == 2 and all(len(k.split()) == 2 for k in keys)


def test_keys_built_against_an_unkeyed_hash_are_read_as_any_others() -> None:
    """Bucket names built to collide under the C path's first hash (unkeyed, so collisions could be made offline;
    that build refused such files, which then cost the Python path) are ordinary keys under the keyed one."""
    names = _colliding_bucket_names(600)
    assert len(set(names)) == 600
    files = [_gz({"Records": _bucket_records(names[i:i + 100], i)}) for i in range(0, 600, 100)]
    reader = _same(files)
    assert reader.fast_files == len(files) and len(reader.groups) == 600


def _ids_in_one_run(n: int) -> list[str]:
    """n eventIDs whose hash under this process's key falls in the first 64 of the ID table's 1,024 slots: added one
    after another they fill one run of n slots, so the last ones probe past MAX_PROBES (256)."""
    assert FAST is not None
    k0, k1 = FAST._hash_key()
    out: list[str] = []
    i = 0
    while len(out) < n:
        eid = f"id-{i}"
        if _siphash13(k0, k1, eid.encode()) & 1023 < 64:
            out.append(eid)
        i += 1
    return out


def test_a_probe_past_the_bound_refuses_the_file_whole() -> None:
    """With the process's key known (in the process itself), IDs can be chosen to share a run of slots; the probe
    bound then refuses the file, and nothing of it stays (the IDs added before the refusal are taken out again)."""
    ids = _ids_in_one_run(330)
    recs = [{"eventID": e, "eventTime": "2024-03-05T10:00:00Z", "eventName": "GetObject"} for e in ids]
    assert FAST is not None
    grouper = FAST.Grouper(REQUEST_PARAMETER_FIELDS, ingest._fast_key)
    groups: dict[Any, Any] = {}
    assert grouper.read(json.dumps({"Records": recs}).encode(), groups, {}) is None
    assert groups == {} and grouper.ids() == []
    # what fits is read, and the table holds it
    assert grouper.read(json.dumps({"Records": recs[:200]}).encode(), groups, {}) == (200, 0, 0, 0)
    assert grouper.ids() == ids[:200]
    reader = _same([_gz({"Records": recs[:200]}), _gz({"Records": recs[200:]})])
    assert (reader.fast_files, reader.fast_refused) == (1, 1)


def test_many_distinct_keys_are_not_refused() -> None:
    """The bound on a probe refuses built collisions only: ordinary keys, many of them, are read by the C path."""
    names = [f"bucket-{i:06d}" for i in range(30_000)]
    reader = _same([_gz({"Records": _bucket_records(names)})])
    assert reader.fast_files == 1 and len(reader.groups) == 30_000


# ---------------------------------------------------------------- a failure part-way, re-entry, the collector


def test_a_grouper_re_entered_from_make_key_raises_and_stays_usable() -> None:
    """read calls make_key (Python) while it holds a slot of the table and the file's events: a call from there
    (make_key, a finalizer, another thread) would move them under it. It raises instead."""
    assert FAST is not None
    grouper: Any = None
    nested: list[Any] = []

    def make_key(*args: Any) -> Any:
        nested.append(grouper.read(b"{}", {}, {}))  # a file it refuses: before the guard, this ran and returned None
        return ingest._fast_key(*args)

    grouper = FAST.Grouper(REQUEST_PARAMETER_FIELDS, make_key)
    raw = json.dumps({"Records": _bucket_records(["a", "b"])}).encode()
    groups: dict[Any, Any] = {}
    with pytest.raises(RuntimeError, match="re-entered"):
        grouper.read(raw, groups, {})
    assert nested == [] and groups == {} and grouper.ids() == []  # not left busy, and nothing kept
    nested_free = FAST.Grouper(REQUEST_PARAMETER_FIELDS, ingest._fast_key)
    assert nested_free.read(raw, groups, {}) == (2, 0, 0, 0)
    assert len(groups) == 2


def test_a_read_that_fails_part_way_leaves_the_reader_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    """make_key failing on a file's third new group (any error there: memory, a bug) leaves the reader's groups,
    events and counts exactly as before the file, so the reader reads on as if the file had not been offered."""
    fail = [False]
    calls = [0]
    fast_key = ingest._fast_key

    def make_key(*args: Any) -> Any:
        calls[0] += 1
        if fail[0] and calls[0] == 3:
            raise MemoryError
        return fast_key(*args)

    first = _gz({"Records": _ordinary(30)})
    # the second file: groups already counted (their count and span change) and new ones (the third one fails)
    second = _gz({"Records": _ordinary(30, first_id=30) + _bucket_records(["n1", "n2", "n3", "n4"], 1000)})
    third = _gz({"Records": _ordinary(5, first_id=70)})
    monkeypatch.setattr(ingest, "_fast_key", make_key)
    reader = CloudTrailReader()
    reader.add_file(first)
    before = repr(_view_copy(reader))
    fail[0], calls[0] = True, 0
    with pytest.raises(MemoryError):
        reader.add_file(second)
    assert repr(_view_copy(reader)) == before
    fail[0] = False
    reader.add_file(third)
    monkeypatch.undo()
    _, slow = _read([first, third], False)
    assert _view(reader) == _view(slow) and reader.fast_files == 2


def _view_copy(r: CloudTrailReader) -> Any:
    """What the reader holds, without moving the C path's events (``events`` would)."""
    return (sorted((repr(k), list(g)) for k, g in r.groups.items()), r.event_ids(), r.duplicates, dict(r.bad))


def test_a_grouper_in_a_reference_cycle_is_collected() -> None:
    """A Grouper holds make_key and the reader's groups: a cycle through it (a make_key that holds the reader) is
    freed by the cyclic collector."""
    assert FAST is not None

    class Holder:
        grouper: Any = None

        def make_key(self, *args: Any) -> Any:
            return ingest._fast_key(*args)

    holder = Holder()
    holder.grouper = FAST.Grouper(REQUEST_PARAMETER_FIELDS, holder.make_key)
    groups: dict[Any, Any] = {}
    assert holder.grouper.read(json.dumps({"Records": _bucket_records(["a"])}).encode(), groups, {}) is not None
    gone = weakref.ref(holder)
    del holder
    gc.collect()
    assert gone() is None
    assert sum(g[2] for g in groups.values()) == 1  # the groups the reader holds stay
