"""Helpers for the chat-platform linking tests: bot credentials, link tokens, a recording
`ChatPlatform`, and SQL that commits (to age a token or plant a link)."""

import uuid
from dataclasses import dataclass, field
from typing import Optional

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot_adapter.platform import Conversation

BOT_TOKENS = {"DISCORD": "test-discord-bot-token-0123456789abcdef",
              "TELEGRAM": "test-telegram-bot-token-0123456789abcdef"}
LINKING = "/api/platform-linking"
BOT = "/api/platform-bot"


def bot_headers(platform: str = "DISCORD") -> dict[str, str]:
    return {"Authorization": f"Bearer {BOT_TOKENS[platform]}"}


def platform_id(kind: str) -> str:
    """A fresh platform id, so tests never share a server or a person."""
    return f"{kind}-{uuid.uuid4().hex[:12]}"


async def server_token(http: httpx.AsyncClient, server_id: str, name: Optional[str] = "Test guild",
                       platform: str = "DISCORD") -> dict:
    response = await http.post(f"{BOT}/link-tokens/server", headers=bot_headers(platform),
                               json={"platform": platform, "platform_server_id": server_id, "server_name": name})
    assert response.status_code == 201, response.text
    return response.json()


async def user_token(http: httpx.AsyncClient, person_id: str, name: Optional[str] = "Ada",
                     platform: str = "DISCORD") -> dict:
    response = await http.post(f"{BOT}/link-tokens/user", headers=bot_headers(platform),
                               json={"platform": platform, "platform_user_id": person_id, "platform_username": name})
    assert response.status_code == 201, response.text
    return response.json()


async def confirm(http: httpx.AsyncClient, user, token: str, flow: str = "server") -> httpx.Response:
    route = "tokens" if flow == "server" else "user-tokens"
    return await http.post(f"{LINKING}/{route}/{token}/confirm", headers=user.headers)


async def link_server(http: httpx.AsyncClient, owner, server_id: str, name: str = "Test guild") -> dict:
    response = await confirm(http, owner, (await server_token(http, server_id, name))["token"])
    assert response.status_code == 200, response.text
    return response.json()


async def link_dms(http: httpx.AsyncClient, owner, person_id: str) -> dict:
    response = await confirm(http, owner, (await user_token(http, person_id))["token"], flow="user")
    assert response.status_code == 200, response.text
    return response.json()


async def execute(database_url: str, sql: str, **params) -> None:
    """A statement that commits (`db_rows` only reads)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(sql), params)
    finally:
        await engine.dispose()


async def expire_token(database_url: str, token: str) -> None:
    await execute(database_url, "UPDATE platform_link_tokens SET expires_at = now() - interval '1 second' "
                                "WHERE token = :t", t=token)


@dataclass
class RecordedReply:
    conversation: Conversation
    parts: list[str] = field(default_factory=list)
    closed: bool = False

    async def write(self, text: str) -> None:
        self.parts.append(text)

    async def close(self) -> None:
        self.closed = True

    @property
    def text(self) -> str:
        return "".join(self.parts)


@dataclass
class RecordingPlatform:
    """A `ChatPlatform` that keeps what the bot sent and streamed."""

    sent: list[tuple[Conversation, str]] = field(default_factory=list)
    replies: list[RecordedReply] = field(default_factory=list)

    async def send(self, conversation: Conversation, text: str) -> None:
        self.sent.append((conversation, text))

    async def open_reply(self, conversation: Conversation) -> RecordedReply:
        self.replies.append(RecordedReply(conversation))
        return self.replies[-1]
