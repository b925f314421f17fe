"""Request and response bodies of chat-platform linking: the user's routes
(`/api/platform-linking`) and the bot's (`/api/platform-bot`).

A platform's ids travel in request bodies, never in paths, so no access log ever holds them.
"""

from datetime import datetime
from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints, field_validator

from models.api import NOT_BLANK, refuse_blank
from models.platforms import PLATFORM_ID_MAX_CHARS, TOKEN_MAX_CHARS, LinkType, Platform
from models.text import refuse_unstorable

TOKEN_PATTERN = r"^[A-Za-z0-9_-]+$"
# A platform's id of a server, channel or person: Discord snowflakes, Telegram chat ids ("-100..."),
# Slack ids ("T0..."); visible ASCII, so it can never smuggle a control character into a query.
PlatformId = Annotated[str, StringConstraints(min_length=1, max_length=PLATFORM_ID_MAX_CHARS,
                                              pattern=r"^[\x21-\x7e]+$")]
DisplayName = Annotated[str, StringConstraints(max_length=200)]
TokenStatus = Literal["pending", "linked", "expired", "superseded"]

BODY = ConfigDict(extra="forbid")


class _Storable(BaseModel):
    model_config = BODY

    @field_validator("*")
    @classmethod
    def _storable(cls, value, info):
        return refuse_unstorable(value, info.field_name)


# --- the user's routes ---

class LinkTokenInfoResponse(BaseModel):
    """What the link page shows before the person confirms: no platform ids."""

    platform: Platform
    link_type: LinkType
    display_name: Optional[str] = Field(description="The server's name (SERVER) or the person's (USER), as the "
                                                    "bot gave it.")
    expires_at: datetime


class PlatformLinkInfo(BaseModel):
    id: str
    platform: Platform
    platform_server_id: str
    server_name: Optional[str]
    linked_at: datetime


class PlatformUserLinkInfo(BaseModel):
    id: str
    platform: Platform
    platform_user_id: str
    platform_username: Optional[str]
    linked_at: datetime


class PlatformLinkList(RootModel[list[PlatformLinkInfo]]):
    """The platform servers linked to the caller."""


class PlatformUserLinkList(RootModel[list[PlatformUserLinkInfo]]):
    """The caller's linked direct messages."""



class ConfirmLinkResponse(PlatformLinkInfo):
    """The server link the confirm made."""


class ConfirmUserLinkResponse(PlatformUserLinkInfo):
    """The DM link the confirm made."""


class DeleteLinkResponse(BaseModel):
    id: str
    deleted: Literal[True] = True


# --- the bot's routes ---

class ResolveServerRequest(_Storable):
    platform: Platform
    platform_server_id: PlatformId


class ResolveUserRequest(_Storable):
    platform: Platform
    platform_user_id: PlatformId


class ResolveResponse(BaseModel):
    """Whether the server (or the person's DMs) is linked; never who owns it."""

    linked: bool
    link_id: Optional[str] = None
    linked_at: Optional[datetime] = None


class CreateServerLinkTokenRequest(_Storable):
    platform: Platform
    platform_server_id: PlatformId
    server_name: Optional[DisplayName] = Field(default=None, description="Shown on the link page.")


class CreateUserLinkTokenRequest(_Storable):
    platform: Platform
    platform_user_id: PlatformId
    platform_username: Optional[DisplayName] = Field(default=None, description="Shown on the link page.")


class LinkTokenResponse(BaseModel):
    token: str = Field(max_length=TOKEN_MAX_CHARS)
    link_type: LinkType
    link_url: str = Field(description="The front end's link page for this token: show it to the person.")
    expires_at: datetime


class LinkTokenStatusResponse(BaseModel):
    status: TokenStatus = Field(description="`pending` (not used yet), `linked` (confirmed), `expired` (30 "
                                            "minutes passed unused), `superseded` (a newer token was issued).")
    link_type: LinkType
    expires_at: datetime


class BotChatRequest(_Storable):
    """A message someone wrote to the bot. With `platform_server_id` (and its channel) it is a
    server's conversation and bills to the server's owner; without, it is the DM of
    `platform_user_id` and bills to that person's linked account."""

    # A server's message needs its channel (the route refuses it without: 422); the spec says so.
    model_config = ConfigDict(json_schema_extra={
        "if": {"required": ["platform_server_id"], "properties": {"platform_server_id": {"type": "string"}}},
        "then": {"required": ["platform_channel_id"], "properties": {"platform_channel_id": {"type": "string"}}}})

    platform: Platform
    platform_user_id: PlatformId = Field(description="Who wrote it (for a DM: the linked person).")
    platform_server_id: Optional[PlatformId] = None
    platform_channel_id: Optional[PlatformId] = Field(default=None, description="Required with a server: "
                                                                                "one session per channel.")
    # Its maxLength in the spec is the server's `max_message_chars` (api/openapi.py).
    message: str = Field(min_length=1, description="The text, as the copilot should read it: not blank.",
                         json_schema_extra={"pattern": NOT_BLANK})

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        return refuse_blank(value)


class ChatTurnHandle(BaseModel):
    """Where the message went and how to follow the answer."""

    session_id: str
    turn_id: str
    message_id: str
    queued: bool = Field(description="True when a turn was already running: the message waits in its buffer and "
                                     "that turn (or the one it continues into) answers it.")
    stream_url: str = Field(description="`GET` it with the bot credential: the turn's UI message stream (SSE), "
                                        "following into auto-continued turns.")
    stream_key: str = Field(description="The turn's Redis stream, for a bot that reads Redis itself.")
    subscribe_from: str = Field(default="0-0", description="Read the Redis stream from here: the whole turn.")
