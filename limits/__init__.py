"""Per-user limits enforced before work is accepted."""
