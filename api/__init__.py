"""HTTP API (FastAPI) for access-request tooling."""
