"""One reader for iamgraph.yaml (iamgraph.config.read_config): every room's loader reports a bad file the same
way, in its own error type, naming the file; each reads only its own section."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from iamgraph.check.config import load_config as check_config
from iamgraph.config import read_config
from iamgraph.detect.config import DetectConfigError, load_detect_config
from iamgraph.errors import InputError
from iamgraph.recommend.config import RecommendConfigError
from iamgraph.recommend.config import load_config as recommend_config

LOADERS: list[tuple[Callable[[Path], Any], type[InputError]]] = [
    (check_config, InputError),
    (recommend_config, RecommendConfigError),
    (load_detect_config, DetectConfigError),
]


@pytest.mark.parametrize(("load", "error"), LOADERS)
@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("check: [unclosed\n", "not valid YAML"),
        ("- a list, not a mapping\n", "must be a mapping"),
        ("just a string\n", "must be a mapping"),
    ],
)
def test_bad_files_fail_alike_naming_the_file(
    tmp_path: Path, load: Callable[[Path], Any], error: type[InputError], text: str, needle: str
) -> None:
    p = tmp_path / "iamgraph.yaml"
    p.write_text(text)
    with pytest.raises(error) as exc:
        load(p)
    assert needle in str(exc.value) and str(p) in str(exc.value)


@pytest.mark.parametrize(("load", "error"), LOADERS)
@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"\xff\xfe check: {}\n", "not UTF-8 text (byte 0)"),
        (b"check:\n  a: [1,\n", "not valid YAML: "),
    ],
)
def test_bad_bytes_and_yaml_errors_are_one_line(
    tmp_path: Path, load: Callable[[Path], Any], error: type[InputError], data: bytes, needle: str
) -> None:
    # A user gets one line naming the file (PyYAML's own message spans several lines with a caret drawing; bad bytes
    # were an internal error).
    p = tmp_path / "iamgraph.yaml"
    p.write_bytes(data)
    with pytest.raises(error) as exc:
        load(p)
    text = str(exc.value)
    assert needle in text and str(p) in text and "\n" not in text, text


@pytest.mark.parametrize(("load", "error"), LOADERS)
def test_missing_file_names_it(tmp_path: Path, load: Callable[[Path], Any], error: type[InputError]) -> None:
    with pytest.raises(error, match="cannot read the config file"):
        load(tmp_path / "absent.yaml")


def test_empty_file_is_no_sections_and_other_sections_are_not_judged(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert read_config(empty).data == {}
    assert str(check_config(empty).check.fail_on) == "high"
    other = tmp_path / "other.yaml"
    # A section no command knows (a newer command's) and another command's malformed section.
    other.write_text("future_command: {x: 1}\nrecommend: {resource_wildcard_threshold: 0}\n")
    assert read_config(other).section("future_command") == {"x": 1}
    assert check_config(other).sensitive_tags == ()
    assert load_detect_config(other).baseline_days == 90
    with pytest.raises(RecommendConfigError, match="resource_wildcard_threshold"):
        recommend_config(other)
