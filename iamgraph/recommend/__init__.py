"""iamgraph.recommend: trimmed, verified least-privilege policy proposals (dry run only)."""

from iamgraph.recommend.config import RecommendConfig, RecommendConfigError, load_config, parse_config
from iamgraph.recommend.recommender import (
    PolicyKind,
    PolicyProposal,
    ProposalStatus,
    Recommendation,
    Recommender,
    Verification,
    recommend_all,
    recommend_principal,
    verify_proposal,
)
from iamgraph.recommend.trim import Call, Trimmed, trim_document

__all__ = [
    "Call",
    "PolicyKind",
    "PolicyProposal",
    "ProposalStatus",
    "RecommendConfig",
    "RecommendConfigError",
    "Recommendation",
    "Recommender",
    "Trimmed",
    "Verification",
    "load_config",
    "parse_config",
    "recommend_all",
    "recommend_principal",
    "trim_document",
    "verify_proposal",
]
