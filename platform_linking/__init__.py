"""Chat-platform linking: servers and direct messages linked to the account that pays for them,
the one-time tokens that make a link, and the owner's session of each platform conversation."""
