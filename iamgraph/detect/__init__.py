"""iamgraph.detect."""
