"""Request bodies have a size limit, enforced before anything reads or parses them (and so
before authentication), and refused with the API's JSON error: a declared length over the limit
at once, a chunked body as soon as it passes it. The Stripe webhook, whose events are small, has
a smaller limit. (FastAPI's own `max_body_size` answers a declared length in plain text.)"""

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WEBHOOK_PATH = "/api/credits/stripe_webhook"
# Stripe's events are a few KB.
WEBHOOK_MAX_BYTES = 256 * 1024


class BodyTooLarge(HTTPException):
    """Raised while the body streams in; an HTTPException, so the app's JSON handler answers it."""

    def __init__(self, limit: int):
        super().__init__(413, f"The request body is larger than {limit} bytes.")


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = WEBHOOK_MAX_BYTES if scope["path"] == WEBHOOK_PATH else self.max_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            body = json.dumps({"error": {"code": "request_too_large",
                                         "message": f"The request body is larger than {limit} bytes."}}).encode()
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)
