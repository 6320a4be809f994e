"""iamgraph: AWS IAM least-privilege analyzer and policy recommender."""

__version__ = "0.1.0"
