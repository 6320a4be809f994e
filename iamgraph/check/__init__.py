"""iamgraph.check."""
