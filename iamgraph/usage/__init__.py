"""iamgraph.usage."""
