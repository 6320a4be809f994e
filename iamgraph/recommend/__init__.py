"""iamgraph.recommend."""
