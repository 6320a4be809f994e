"""Deviation alerts: CloudTrail calls outside each principal's baseline, delivered to sinks through a spool.

Entry points: ``run.run_once`` (one detection window), ``run.Follower`` (poll a log directory),
``rules.Detector`` (the rules over events and baselines), ``spool.spool_and_deliver``. See docs/detect.md.
"""

from iamgraph.detect.types import Alert, CallEvent, RuleId, Severity

__all__ = ["Alert", "CallEvent", "RuleId", "Severity"]
