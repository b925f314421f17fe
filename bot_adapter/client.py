"""A client of the bot API (`/api/platform-bot`), authenticated by the bot's service credential."""

import json
from typing import Any, AsyncIterator, Optional

import httpx

from models.platform_api import ChatTurnHandle, LinkTokenResponse, LinkTokenStatusResponse, ResolveResponse

PREFIX = "/api/platform-bot"


class BotApiError(Exception):
    """A refusal of the bot API: its status, code and message (the owner's `usage_limit`, a
    `not_linked` server, `already_linked`, ...), which a bot can show as it is."""

    def __init__(self, status: int, code: str, message: str, details: Any = None, retry_after: Optional[str] = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.retry_after = retry_after


async def _refusal(response: httpx.Response) -> BotApiError:
    await response.aread()
    try:
        error = response.json()["error"]
        return BotApiError(response.status_code, error["code"], error["message"], error.get("details"),
                           response.headers.get("retry-after"))
    except (ValueError, KeyError, TypeError):
        return BotApiError(response.status_code, "http_error", response.text[:200])


class BotApiClient:
    def __init__(self, base_url: str, bot_token: str, platform: str, http: Optional[httpx.AsyncClient] = None,
                 timeout_seconds: float = 60.0):
        self.platform = platform
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(timeout_seconds))
        self._headers = {"Authorization": f"Bearer {bot_token}"}

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> "BotApiClient":
        return self

    async def __aexit__(self, *_exc) -> None:
        await self.aclose()

    async def _call(self, method: str, path: str, body: Optional[dict] = None,
                    headers: Optional[dict[str, str]] = None) -> httpx.Response:
        response = await self._http.request(method, PREFIX + path, json=body, headers={**self._headers,
                                                                                        **(headers or {})})
        if response.status_code >= 400:
            raise await _refusal(response)
        return response

    async def resolve_server(self, platform_server_id: str) -> ResolveResponse:
        response = await self._call("POST", "/servers/resolve", {"platform": self.platform,
                                                                  "platform_server_id": platform_server_id})
        return ResolveResponse.model_validate(response.json())

    async def resolve_user(self, platform_user_id: str) -> ResolveResponse:
        response = await self._call("POST", "/users/resolve", {"platform": self.platform,
                                                                "platform_user_id": platform_user_id})
        return ResolveResponse.model_validate(response.json())

    async def create_server_link_token(self, platform_server_id: str,
                                       server_name: Optional[str] = None) -> LinkTokenResponse:
        response = await self._call("POST", "/link-tokens/server", {
            "platform": self.platform, "platform_server_id": platform_server_id, "server_name": server_name})
        return LinkTokenResponse.model_validate(response.json())

    async def create_user_link_token(self, platform_user_id: str,
                                     platform_username: Optional[str] = None) -> LinkTokenResponse:
        response = await self._call("POST", "/link-tokens/user", {
            "platform": self.platform, "platform_user_id": platform_user_id, "platform_username": platform_username})
        return LinkTokenResponse.model_validate(response.json())

    async def link_token_status(self, token: str) -> LinkTokenStatusResponse:
        return LinkTokenStatusResponse.model_validate((await self._call("GET", f"/link-tokens/{token}")).json())

    async def start_chat_turn(self, platform_user_id: str, message: str, platform_server_id: Optional[str] = None,
                              platform_channel_id: Optional[str] = None,
                              idempotency_key: Optional[str] = None) -> ChatTurnHandle:
        body = {"platform": self.platform, "platform_user_id": platform_user_id, "message": message,
                "platform_server_id": platform_server_id, "platform_channel_id": platform_channel_id}
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return ChatTurnHandle.model_validate((await self._call("POST", "/chat/turns", body, headers)).json())

    async def stream_parts(self, handle: ChatTurnHandle) -> AsyncIterator[dict[str, Any]]:
        """The turn's UI parts (`text-delta`, `finish`, ...) as they arrive, until the stream ends."""
        async with self._http.stream("GET", handle.stream_url, headers=self._headers) as response:
            if response.status_code >= 400:
                raise await _refusal(response)
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue  # ids, keep-alives and blank separators
                data = line[len("data: "):]
                if data == "[DONE]":
                    return
                yield json.loads(data)

    async def stop(self, session_id: str) -> bool:
        return bool((await self._call("POST", f"/sessions/{session_id}/stop")).json()["stopped"])
