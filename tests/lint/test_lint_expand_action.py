"""``iamgraph.lint`` replaces parliament's ``expand_action`` with one that finds services by prefix and literal
actions by name (``_index_expand_action``): it must answer exactly as parliament's own, list and exceptions, or
every lint would change. Compared in a fresh interpreter (this process may have imported parliament the ordinary
way, and then nothing is replaced) over a sample of every service's actions and a set of patterns."""

from __future__ import annotations

import json
import subprocess
import sys

_COMPARE = """
import json
from iamgraph.lint import _parliament
p = _parliament()
mine = p.expand_action
theirs = mine.__wrapped_original__
import parliament.statement, parliament.policy
installed = parliament.statement.expand_action is mine and parliament.policy.expand_action is mine
services = list(p.iam_definition)
inputs = ["*", "*:*", "*:Get*", "*:getobject", "S3:GetObject", "s3:getobject", "s3:Get*", "s3:*Object*",
          "s3:?etObject", "s3:[Gg]etObject", "ec2:Describe*", "iam:*", "iam:PassRole", "iam:passrole",
          "nosuchservice:Get*", "s3:NoSuchAction", "s3:", ":GetObject", "a:b:c", "iq:*", "iq:Get*"]
for n, s in enumerate(services):
    privileges = [x["privilege"] for x in s["privileges"]]
    inputs.append(s["prefix"] + ":*")
    inputs.extend(f"{s['prefix']}:{name}" for name in privileges[n % 5::9])
    if privileges:
        inputs.append(f"{s['prefix']}:{privileges[0][:3].lower()}*")
differ = []
raised = 0
for action in inputs:
    for strict in (True, False):
        answers = []
        for f in (mine, theirs):
            try:
                answers.append(("ok", json.dumps(f(action, strict))))
            except Exception as err:
                answers.append((type(err).__name__, str(err)))
        raised += answers[1][0] != "ok"
        if answers[0] != answers[1]:
            differ.append([action, strict, answers])
print(json.dumps({"installed": installed, "inputs": len(inputs), "raised": raised, "differ": differ[:5]}))
"""


def test_the_indexed_expand_action_answers_as_parliaments_own() -> None:
    res = subprocess.run([sys.executable, "-c", _COMPARE], capture_output=True, text=True, timeout=600, check=True)
    out = json.loads(res.stdout)
    assert out["installed"] is True
    assert out["differ"] == []
    assert out["inputs"] > 2000  # every service's wildcard and a ninth of its actions
    assert out["raised"] >= 4  # the unknown prefix and action, the malformed names: exceptions compared too


_COMPARE_PRIVILEGE_INFO = """
import json
from iamgraph.lint import _parliament
p = _parliament()
import parliament.statement as st
mine = st.get_privilege_info
theirs = mine.__wrapped_original__
inputs = [("s3", "GetObject"), ("s3", "getobject"), ("S3", "GetObject"), ("s3", "NoSuchAction"),
          ("nosuchservice", "GetObject"), ("", ""), ("iam", "PassRole")]
for s in p.iam_definition:
    inputs.extend((s["prefix"], x["privilege"]) for x in s["privileges"])
differ = []
raised = same_object = 0
for service, action in inputs:
    answers = []
    objects = []
    for f in (mine, theirs):  # mine first, each answer written out at once: what it set, not what theirs set after
        try:
            objects.append(f(service, action))
            answers.append(("ok", json.dumps(objects[-1], sort_keys=True)))
        except Exception as err:
            answers.append((type(err).__name__, str(err)))
    raised += answers[1][0] != "ok"
    same_object += len(objects) == 2 and objects[0] is objects[1]
    if answers[0] != answers[1]:
        differ.append([service, action, answers])
print(json.dumps({"installed": mine is not theirs and getattr(mine, "_iamgraph_indexed", False),
                  "inputs": len(inputs), "raised": raised, "same_object": same_object, "differ": differ[:5]}))
"""


def test_the_indexed_privilege_lookup_answers_as_parliaments_own() -> None:
    # Every privilege of every service (the first of a name, in the entries' order, for the prefixes parliament lists
    # twice), the entry itself with the service's resources and conditions set on it, and the exceptions.
    res = subprocess.run([sys.executable, "-c", _COMPARE_PRIVILEGE_INFO], capture_output=True, text=True, timeout=600,
                         check=True)
    out = json.loads(res.stdout)
    assert out["installed"] is True
    assert out["differ"] == []
    assert out["inputs"] > 10_000
    assert out["raised"] == 5  # lower-cased name, upper-cased prefix, unknown action, unknown prefix, empty
    assert out["same_object"] == out["inputs"] - out["raised"]
