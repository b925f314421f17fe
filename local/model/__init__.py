"""A built-in, offline, OpenAI-compatible model: used whenever no provider key is configured."""
