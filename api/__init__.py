"""The thin HTTP front: starts, updates and queries workflows, reads Postgres and Redis."""
