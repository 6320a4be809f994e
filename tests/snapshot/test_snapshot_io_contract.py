"""The on-disk contract: write/read round trip, content hash, version gate, atomic writes."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from iamgraph.cli import app
from iamgraph.errors import SnapshotError, SnapshotVersionError
from iamgraph.snapshot import (
    SCHEMA_VERSION,
    Snapshot,
    SnapshotIndex,
    content_hash,
    read_snapshot,
    read_snapshot_checked,
    snapshot_from_dict,
    write_snapshot,
)
from iamgraph.snapshot import io as snapshot_io
from iamgraph.snapshot.model import (
    Account,
    Group,
    InlinePolicy,
    ManagedPolicy,
    PolicyVersion,
    Resource,
    Role,
    User,
)

A = "111122223333"


def _doc(action: str = "s3:GetObject") -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]}


def sample() -> Snapshot:
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}  # fmt: skip
    return Snapshot(
        collected_at="2026-01-01T00:00:00Z",
        accounts=[
            Account(
                account_id=A,
                users=[User(arn=f"arn:aws:iam::{A}:user/u", name="u", user_id="AIDA1", groups=["g"])],
                groups=[
                    Group(
                        arn=f"arn:aws:iam::{A}:group/g",
                        name="g",
                        group_id="AGPA1",
                        inline_policies=[InlinePolicy(name="i", document=_doc())],
                    )
                ],
                roles=[
                    Role(
                        arn=f"arn:aws:iam::{A}:role/r",
                        name="r",
                        role_id="AROA1",
                        trust_policy=trust,
                        tags={"env": "prod"},
                    )
                ],
                policies=[
                    ManagedPolicy(
                        arn=f"arn:aws:iam::{A}:policy/team/p",
                        name="p",
                        path="/team/",
                        default_version_id="v2",
                        versions=[
                            PolicyVersion(version_id="v1", is_default=False, document=_doc()),
                            PolicyVersion(version_id="v2", is_default=True, document=_doc("s3:*")),
                        ],
                    )
                ],
                resources=[
                    Resource(
                        arn="arn:aws:s3:::b",
                        type="s3:bucket",
                        policy=None,
                        tags={"DataClassification": "PII"},
                    )
                ],
            )
        ],
    )


# ---------------------------------------------------------------- round trip and hash


def test_round_trip_gz_and_plain(tmp_path: Path) -> None:
    snap = sample()
    for name in ("s.json.gz", "s.json"):
        written = write_snapshot(snap, tmp_path / name)
        assert written.content_hash == content_hash(snap)
        back, verified = read_snapshot_checked(tmp_path / name)
        assert back == written and verified is True
    assert (tmp_path / "s.json.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert json.loads((tmp_path / "s.json").read_text())["schema_version"] == SCHEMA_VERSION


def test_index_lookups() -> None:
    idx = SnapshotIndex(sample())
    user = idx.users[f"arn:aws:iam::{A}:user/u"]
    assert [g.name for g in idx.groups_of(user)] == ["g"]
    assert idx.customer_policy(A, "/team/p") is idx.customer_policy(A, "team/p") is not None
    assert idx.account_of["arn:aws:s3:::b"] == A
    assert idx.role_by_name(A, "r") is not None and idx.role_by_name(A, "x") is None


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
tags = st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=3)


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    accounts = []
    for n, acct in enumerate(
        draw(st.lists(st.sampled_from([A, "444455556666", "777788889999"]), unique=True, max_size=3))
    ):
        roles = [
            Role(
                arn=f"arn:aws:iam::{acct}:role/r{i}",
                name=f"r{i}",
                role_id=f"AROA{n}{i}",
                trust_policy=draw(st.dictionaries(st.text(max_size=6), json_values, max_size=4)),
                tags=draw(tags),
                description=draw(st.none() | st.text(max_size=10)),
            )
            for i in range(draw(st.integers(0, 3)))
        ]
        accounts.append(
            Account(account_id=acct, roles=roles, credential_report=draw(st.lists(tags, max_size=2)))
        )
    return Snapshot(collected_at=draw(st.text(min_size=1, max_size=20)), accounts=accounts)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(snap=snapshots())
def test_any_snapshot_round_trips_with_a_stable_hash(tmp_path: Path, snap: Snapshot) -> None:
    path = tmp_path / "h.json.gz"
    written = write_snapshot(snap, path)
    first = path.read_bytes()
    back, verified = read_snapshot_checked(path)
    assert back == written and verified is True
    assert content_hash(back) == written.content_hash
    # deterministic bytes: writing the same snapshot again gives the same file (gzip mtime is 0)
    write_snapshot(back, path)
    assert path.read_bytes() == first


def test_hash_follows_content_not_key_order(tmp_path: Path) -> None:
    snap = sample()
    reordered = snap.model_copy(deep=True)
    role = reordered.accounts[0].roles[0]
    role.trust_policy = dict(reversed(list(role.trust_policy.items())))
    assert content_hash(reordered) == content_hash(snap)
    role.tags = {"env": "dev"}
    assert content_hash(reordered) != content_hash(snap)


def test_edited_file_fails_the_hash_check(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    write_snapshot(sample(), path)
    data = json.loads(path.read_text())
    data["accounts"][0]["roles"][0]["tags"]["env"] = "dev"
    path.write_text(json.dumps(data))
    assert read_snapshot_checked(path)[1] is False
    res = CliRunner().invoke(app, ["snapshot", "info", str(path), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["content_hash_verified"] is False


# ---------------------------------------------------------------- version gate


def _with_version(tmp_path: Path, version: str, **extra: Any) -> Path:
    data = sample().model_dump(mode="json")
    data.update(schema_version=version, **extra)
    path = tmp_path / f"v{version}.json"
    path.write_bytes(orjson.dumps(data))
    return path


def test_newer_major_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    major = int(SCHEMA_VERSION.split(".")[0])
    path = _with_version(tmp_path, f"{major + 1}.0")
    with pytest.raises(
        SnapshotVersionError,
        match=rf"snapshot schema {major + 1}\.0 is newer than this iamgraph understands \({SCHEMA_VERSION}\); upgrade iamgraph",
    ):
        read_snapshot(path)
    res = CliRunner().invoke(app, ["snapshot", "info", str(path)])
    assert res.exit_code == 2 and "upgrade iamgraph" in res.stderr


def test_newer_minor_is_read_without_its_additions(tmp_path: Path) -> None:
    major, minor = (int(x) for x in SCHEMA_VERSION.split("."))
    data = sample().model_dump(mode="json")
    data["schema_version"] = f"{major}.{minor + 1}"
    data["new_top_level"] = {"x": 1}
    data["accounts"][0]["roles"][0]["new_role_field"] = [1, 2]
    del data["content_hash"]  # the hash covers everything but itself, as the writer computes it
    body = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    data["content_hash"] = "sha256:" + hashlib.sha256(body).hexdigest()
    path = tmp_path / "newer-minor.json"
    path.write_bytes(orjson.dumps(data))
    snap, verified = read_snapshot_checked(path)
    assert verified is True  # checked on the file's own JSON, additions included
    assert snap.accounts[0].roles[0].trust_policy == sample().accounts[0].roles[0].trust_policy
    # the same unknown field in the reader's own version is a corrupt file, not a newer one
    with pytest.raises(SnapshotError, match=r"invalid snapshot at new_top_level"):
        snapshot_from_dict({**sample().model_dump(mode="json"), "new_top_level": 1})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"collected_at": "x"}, r"no schema_version: this is not an iamgraph snapshot"),
        ({"schema_version": "one", "collected_at": "x"}, r"schema_version 'one' is not MAJOR\.MINOR"),
        ({"schema_version": "0.9", "collected_at": "x"}, r"older than this iamgraph reads"),
        ([1], r"a snapshot is a JSON object"),
        ({"schema_version": SCHEMA_VERSION}, r"invalid snapshot at collected_at"),
    ],
)
def test_not_snapshots(data: Any, message: str) -> None:
    with pytest.raises(SnapshotError, match=message):
        snapshot_from_dict(data, source="f")


def test_corrupt_files(tmp_path: Path) -> None:
    good = tmp_path / "s.json.gz"
    write_snapshot(sample(), good)
    raw = good.read_bytes()
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(SnapshotError, match=r"cut\.json\.gz: corrupt or truncated gzip data"):
        read_snapshot(cut)
    flipped = tmp_path / "flip.json.gz"
    flipped.write_bytes(raw[:20] + bytes(b ^ 0xFF for b in raw[20:40]) + raw[40:])
    with pytest.raises(SnapshotError, match=r"flip\.json\.gz: "):
        read_snapshot(flipped)
    text = tmp_path / "t.json"
    text.write_bytes(gzip.decompress(raw)[:100])
    with pytest.raises(SnapshotError, match=r"t\.json: invalid JSON"):
        read_snapshot(text)
    with pytest.raises(SnapshotError, match=r"no such snapshot file"):
        read_snapshot(tmp_path / "none.json")


# ---------------------------------------------------------------- atomic writes


@pytest.mark.parametrize("where", ["fsync", "replace", "write"])
def test_interrupted_write_leaves_the_old_file_and_no_partial_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    path = tmp_path / "s.json.gz"
    old = write_snapshot(sample(), path)
    before = path.read_bytes()

    class Boom(BaseException):
        """Stands in for a crash or Ctrl-C mid-write (BaseException, like KeyboardInterrupt)."""

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise Boom

    if where == "write":
        real_fdopen = os.fdopen

        def fdopen(fd: int, mode: str) -> Any:
            fh = real_fdopen(fd, mode)

            class Half:
                def __enter__(self) -> Half:
                    return self

                def __exit__(self, *exc: Any) -> None:
                    fh.close()

                def write(self, data: bytes) -> None:
                    fh.write(data[: len(data) // 2])  # half of it reaches the disk, then the crash
                    raise Boom

            return Half()

        monkeypatch.setattr(snapshot_io.os, "fdopen", fdopen)
    else:
        monkeypatch.setattr(snapshot_io.os, where, boom)

    changed = sample()
    changed.accounts[0].roles[0].tags["env"] = "dev"
    with pytest.raises(Boom):
        write_snapshot(changed, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert read_snapshot(path) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json.gz"]  # no temp file left behind


def test_unwritable_numbers_are_an_error_not_a_crash(tmp_path: Path) -> None:
    snap = sample()
    snap.accounts[0].roles[0].trust_policy["Statement"][0]["Condition"] = {"NumericEquals": {"k": 2**70}}
    with pytest.raises(SnapshotError, match=r"cannot be written as JSON"):
        write_snapshot(snap, tmp_path / "s.json")
    assert not (tmp_path / "s.json").exists()


def test_file_mode_owner_only_for_new_files_kept_for_replaced_ones(tmp_path: Path) -> None:
    new = tmp_path / "new.json.gz"
    write_snapshot(sample(), new)
    assert new.stat().st_mode & 0o777 == 0o600
    shared = tmp_path / "shared.json.gz"
    shared.write_bytes(b"old")
    shared.chmod(0o644)
    write_snapshot(sample(), shared)
    assert shared.stat().st_mode & 0o777 == 0o644
    assert read_snapshot(shared).accounts[0].account_id == A


def test_unwritable_target_is_an_error_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    with pytest.raises(SnapshotError, match=r"adir: cannot write the snapshot: Is a directory"):
        write_snapshot(sample(), tmp_path / "adir")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir"]
