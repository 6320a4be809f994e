"""iamgraph.graph."""
