"""The boundary to the chat platform: what a real bot implements with its platform's SDK
(discord.py, python-telegram-bot, slack_bolt, ...). Nothing here calls a platform."""

from dataclasses import dataclass
from typing import Optional, Protocol


@dataclass(frozen=True)
class Conversation:
    """Where a message was written: a server's channel, or a person's direct messages with the bot
    (`platform_server_id` None)."""

    platform_server_id: Optional[str]
    channel_id: Optional[str]
    server_name: Optional[str] = None

    @property
    def is_direct(self) -> bool:
        return self.platform_server_id is None


@dataclass(frozen=True)
class PlatformMessage:
    conversation: Conversation
    author_id: str
    author_name: str
    text: str
    message_id: Optional[str] = None  # the platform's id: makes a redelivered message a no-op


class ReplyWriter(Protocol):
    """One answer that grows as it streams (a Discord bot edits its message, a terminal prints)."""

    async def write(self, text: str) -> None: ...

    async def close(self) -> None: ...


class ChatPlatform(Protocol):
    async def send(self, conversation: Conversation, text: str) -> None:
        """A whole message: a link to open, a refusal, a notice."""

    async def open_reply(self, conversation: Conversation) -> ReplyWriter:
        """Where the assistant's streamed answer goes."""
