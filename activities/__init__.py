"""Temporal activities: every side effect of a turn (model calls, tools, database, stream)."""
