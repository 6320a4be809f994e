"""CloudTrail LookupEvents: a small-scale alternative to log files (management events, last 90 days).

https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupEvents.html
The events go through the log files' reader (``CloudTrailReader``, its general path) and the very same
aggregation SQL, so attribution and mapping cannot differ between the two paths.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from iamgraph.usage.ingest import CloudTrailReader, Ingestor
from iamgraph.usage.store import UsageStore
from iamgraph.usage.types import IngestStats


def lookup_records(client: Any, *, start: datetime, end: datetime) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    paginator = client.get_paginator("lookup_events")
    for page in paginator.paginate(StartTime=start, EndTime=end):
        for event in page.get("Events", []):
            raw = event.get("CloudTrailEvent")
            if raw:
                records.append(orjson.loads(raw))
    return records


def ingest_lookup_events(store: UsageStore, client: Any, *, start: datetime, end: datetime) -> IngestStats:
    records = lookup_records(client, start=start, end=end)
    ingestor = Ingestor(store)
    reader = CloudTrailReader()
    reader.add_records(records)
    # Stored like a batch of log files: an event already counted (an earlier lookup, a log file) counts once.
    return ingestor.ingest_reader(reader)
