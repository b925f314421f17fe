"""Temporal workflow definitions: deterministic code only, side effects go to activities."""
