"""Sandboxed command execution."""
