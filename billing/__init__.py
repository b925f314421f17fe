"""Money and credits."""
