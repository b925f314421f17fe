"""A pretend chat platform in the terminal, driving the reference bot adapter against the API."""
