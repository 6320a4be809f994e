"""Frozen value types shared by every layer: ARNs, policies, statements."""

from iamgraph.model.arn import Arn, account_of, is_account_id, try_parse
from iamgraph.model.policy import (
    ConditionClause,
    Effect,
    Policy,
    PrincipalSpec,
    Statement,
    load_document,
    parse_policy,
)

__all__ = [
    "Arn",
    "ConditionClause",
    "Effect",
    "Policy",
    "PrincipalSpec",
    "Statement",
    "account_of",
    "is_account_id",
    "load_document",
    "parse_policy",
    "try_parse",
]
