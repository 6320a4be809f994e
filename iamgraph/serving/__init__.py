"""What the two faces of ``iamgraph serve`` share: the bearer-token store and the server's environment contract.

The CLI (``iamgraph serve``, ``iamgraph token ...``) writes these; the HTTP API (``api``) reads them. Both faces
import this package and neither imports the other (import-linter: ``api`` must not import ``iamgraph.cli``).
"""
