"""iamgraph.report."""
