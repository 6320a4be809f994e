"""The shape of a conformance case file (tests/eval/cases/*.json), strict: unknown keys are errors.

A case file is ``{"topic": str, "description": str, "cases": [case, ...]}``. A case names the AWS
rule it checks and the page that states it, gives one line of the batch format of issue 3 as
``input`` and says what AWS decides. See docs/conformance.md.

``input`` is validated against the batch format (``BatchLine``) for every case that does not
expect an error, so a typo in a case ("permissionsBoundry") fails loudly instead of silently
testing nothing. Malformed-input cases keep their ``input`` free-form on purpose.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CASES_DIR = Path(__file__).resolve().parent / "cases"

DecisionName = Literal["Allowed", "ExplicitlyDenied", "ImplicitlyDenied"]

# Where the rules come from. A case must cite AWS's own documentation.
DOC_PREFIXES = ("https://docs.aws.amazon.com/",)

# JSON null marks a key as known to be absent (so discovery mode does not treat it as unknown).
ContextValue = str | bool | int | float | list[str] | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class BatchRequest(_Strict):
    principal: str = Field(min_length=1)
    action: str = Field(pattern=r"^[A-Za-z0-9-]+:[A-Za-z0-9*?]+$")
    resource: str = Field(min_length=1)
    resourceAccount: str | None = Field(default=None, pattern=r"^\d{12}$")
    context: dict[str, ContextValue] = Field(default_factory=dict)


class BatchPolicies(_Strict):
    identity: list[dict[str, Any]] = Field(default_factory=list)
    resource: dict[str, Any] | None = None
    permissionBoundary: dict[str, Any] | None = None
    session: dict[str, Any] | None = None
    scps: list[list[dict[str, Any]]] = Field(default_factory=list)
    rcps: list[list[dict[str, Any]]] = Field(default_factory=list)
    # S3 Block Public Access "RestrictPublicBuckets" in force for the bucket (engine extension of the format).
    restrictPublicBuckets: bool = False
    # KMS grants of the key (ListGrants entries) and the VPC endpoint policy (engine extensions of the format).
    kmsGrants: list[dict[str, Any]] = Field(default_factory=list)
    vpcEndpointPolicy: dict[str, Any] | None = None
    # The resource is AWS managed (an AWS managed KMS key), which its ARN does not show.
    awsManagedResource: bool = False


class BatchLine(_Strict):
    """One input line of ``iamgraph simulate --batch`` (issue 3)."""

    id: Any = None
    request: BatchRequest
    policies: BatchPolicies


class Expect(_Strict):
    decision: DecisionName | None = None
    conditional: bool | None = None
    condition_keys: list[str] | None = None
    # With negated_keys given, every condition key must appear in a residual whose "negated" flag says
    # where it came from: true for these keys (a Deny's clause, which must be false for access), false
    # for the others (an Allow's clause, which must be true).
    negated_keys: list[str] | None = None
    error: bool | None = None
    # The id of the AWS service rule (iamgraph.eval.service_rules) the answer must name in "refusedBy".
    refused_by: str | None = None

    @model_validator(mode="after")
    def _coherent(self) -> Expect:
        if self.error is not True and self.decision is None:
            raise ValueError("expect.decision is required unless expect.error is true")
        if self.error is False:
            raise ValueError("write no expect.error rather than false")
        if self.conditional is True and self.decision != "Allowed":
            raise ValueError('a conditional answer has decision "Allowed"')
        if self.condition_keys is not None and self.conditional is not True:
            raise ValueError("condition_keys only make sense with conditional: true")
        if self.negated_keys is not None and not set(self.negated_keys) <= set(self.condition_keys or []):
            raise ValueError("negated_keys must be a subset of condition_keys")
        if self.error is True and (
            self.conditional is not None or self.condition_keys is not None or self.negated_keys is not None
        ):
            raise ValueError("an error case says nothing about conditions")
        return self


class Case(_Strict):
    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*-\d{3}$")
    rule: str = Field(min_length=10)
    doc: str
    mode: Literal["strict", "discovery"]
    input: dict[str, Any]
    expect: Expect

    @model_validator(mode="after")
    def _coherent(self) -> Case:
        if not self.doc.startswith(DOC_PREFIXES):
            raise ValueError(f"{self.id}: doc must be an AWS documentation URL, not {self.doc!r}")
        if self.mode == "strict" and self.expect.conditional is True:
            raise ValueError(f"{self.id}: strict mode never gives a conditional answer")
        if self.mode == "discovery" and self.expect.error is not True and self.expect.conditional is None:
            raise ValueError(f"{self.id}: a discovery case must say whether the answer is conditional")
        if self.expect.error is not True:
            BatchLine.model_validate(self.input)
        return self


class CaseFile(_Strict):
    topic: str = Field(min_length=3)
    description: str = Field(min_length=10)
    cases: list[Case] = Field(min_length=1)


def load_case_files(directory: Path = CASES_DIR) -> dict[str, CaseFile]:
    """Every case file by file name, validated; raises ValueError naming the file on bad content."""
    files: dict[str, CaseFile] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            files[path.name] = CaseFile.model_validate(raw)
        except (ValueError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: {exc}") from exc
    return files
