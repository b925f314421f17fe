"""What linking refuses; the API turns each into its status (404, 403, 409, 410, 400)."""


class LinkingError(ValueError):
    """A refusal with a message meant for the person or the bot."""


class NotFound(LinkingError):
    pass


class NotAuthorized(LinkingError):
    """The link exists but belongs to someone else."""


class LinkAlreadyExists(LinkingError):
    pass


class LinkTokenExpired(LinkingError):
    """Expired, already used, or superseded by a newer token: `reason` says which."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


class LinkFlowMismatch(LinkingError):
    """A server token at the DM confirm, or the other way round."""
