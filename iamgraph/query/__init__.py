"""iamgraph.query."""
