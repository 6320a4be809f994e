"""iamgraph.collect."""
