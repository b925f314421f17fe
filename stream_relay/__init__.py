"""Carries UI-stream parts from the activities to the browser through one Redis stream per turn.

Temporal history holds decisions (whole messages, tool calls, usage); tokens never enter it.
"""
