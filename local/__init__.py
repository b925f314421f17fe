"""Local stand-ins for development and tests, not the product: the launcher with its embedded
servers (`local.stack`), the offline model (`local.model`) and the offline Stripe sandbox
(`local.stripe`). Installed only by the `dev` extra."""
