"""The botocore eventSource index kept between runs: the same index as reading every model, owner-only."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from iamgraph.usage import mapping


def test_the_cached_index_equals_the_one_read_from_botocore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    mapping._botocore_index.cache_clear()
    try:
        built = mapping._botocore_index()  # no cache file yet: read from botocore, then written
        path = mapping._index_cache()
        assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
        mapping._botocore_index.cache_clear()
        assert mapping._botocore_index() == built  # read back from the file
        assert "s3.amazonaws.com" in built and any("GetObject" in s.operations for s in built["s3.amazonaws.com"])
        # A damaged file is rebuilt from botocore, not trusted.
        path.write_bytes(b'{"s3.amazonaws.com": [["s3", 1]]}')
        mapping._botocore_index.cache_clear()
        assert mapping._botocore_index() == built
    finally:
        mapping._botocore_index.cache_clear()
