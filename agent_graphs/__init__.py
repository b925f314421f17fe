"""Agent graphs: the store (an interface with a local PostgreSQL implementation), validation and
mechanical fixes, edits, and the building guide."""
