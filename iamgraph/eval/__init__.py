"""iamgraph.eval."""
