"""parliament loaded without pkg_resources and with its service data decoded per service
(``iamgraph.lint._parliament``) reads exactly what its own import reads, and lints alike. Each side runs in a
fresh interpreter: this test process may have imported parliament the ordinary way already."""

from __future__ import annotations

import json
import subprocess
import sys

# Documents whose findings touch several services, a wildcard prefix, an unknown action and a resource mismatch.
DOCS = [
    {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:GetObject", "iam:PassRole", "ec2:Describe*"], "Resource": "*"}]},
    {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": ["s3:GetObject", "s3:abc"],
                                            "Resource": ["arn:aws:s3:::bucket1"]}},
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                                            {"Effect": "Allow", "NotAction": "kms:*", "Resource": "*",
                                             "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}}}]},
]

_LAZY = """
import json, sys
from iamgraph.lint import _parliament
p = _parliament()
lazy = type(p.iam_definition[0]).__name__
with open(p.iam_definition_path) as fh:  # compared before linting: parliament adds keys to entries it reads
    same = [dict(s) for s in p.iam_definition] == json.load(fh)
docs = json.loads(sys.argv[1])
found = [sorted([f.issue, json.dumps(f.location, sort_keys=True, default=str), str(f.detail)]
                for f in p.analyze_policy_string(json.dumps(d)).findings) for d in docs]
loaded = "pkg_resources" in sys.modules
print(json.dumps({"findings": found, "pkg_resources": loaded, "same_definition": same,
                  "lazy": lazy}))
"""

_STOCK = """
import json, sys
import parliament as p
docs = json.loads(sys.argv[1])
found = [sorted([f.issue, json.dumps(f.location, sort_keys=True, default=str), str(f.detail)]
                for f in p.analyze_policy_string(json.dumps(d)).findings) for d in docs]
print(json.dumps({"findings": found}))
"""


def _run(code: str) -> dict[str, object]:
    res = subprocess.run([sys.executable, "-c", code, json.dumps(DOCS)], capture_output=True, text=True,
                         timeout=600, check=True)
    out: dict[str, object] = json.loads(res.stdout)
    return out


def test_the_lazy_load_reads_what_parliament_reads_and_lints_alike() -> None:
    lazy, stock = _run(_LAZY), _run(_STOCK)
    assert lazy["lazy"] == "_LazyService"  # the lazy list is what was loaded (not the fallback)
    assert lazy["pkg_resources"] is False
    assert lazy["findings"] == stock["findings"]
    assert lazy["same_definition"] is True
    assert all(lazy["findings"])  # every document has findings: the comparison is not of empty lists


def test_the_lazy_list_falls_back_to_a_whole_decode_on_text_laid_out_otherwise() -> None:
    from iamgraph.lint import _lazy_services

    compact = json.dumps([{"conditions": [], "prefix": "a", "privileges": [], "resources": []}])
    assert _lazy_services(compact) is None
    spaced = json.dumps([{"prefix": "a", "x": "  },\n  {\n"}, {"prefix": "b"}], indent=2)
    services = _lazy_services(spaced)
    assert services is not None and [dict(s) for s in services] == json.loads(spaced)


_THREADS = """
import json, sys, threading, time
real = json.load
from iamgraph.lint import _parliament


class SlowParliament:
    # Holds the first import of parliament open a while, so the other threads ask while it is under way.
    def find_spec(self, name, path=None, target=None):
        if name == "parliament":
            time.sleep(0.3)
        return None


sys.meta_path.insert(0, SlowParliament())
got = []
start = threading.Barrier(16)  # all ask at once: the first use is where a race would be


def first_use():
    start.wait()
    got.append(_parliament())


threads = [threading.Thread(target=first_use) for _ in range(16)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"modules": len({id(m) for m in got}), "calls": len(got), "json_load_restored": json.load is real,
                  "pkg_resources": "pkg_resources" in sys.modules}))
"""


def test_threads_loading_parliament_at_once_get_one_module_and_leave_nothing_swapped() -> None:
    got = _run(_THREADS)
    assert got == {"modules": 1, "calls": 16, "json_load_restored": True, "pkg_resources": False}
