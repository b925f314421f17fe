"""A reference bot adapter for chat-platform linking: `BotApiClient` speaks the bot API
(`/api/platform-bot`), `LinkingBot` is what a bot does with each message, and `ChatPlatform` is
the boundary a real Discord, Telegram or Slack bot implements with its SDK."""

from bot_adapter.bot import HandleOutcome, LinkingBot
from bot_adapter.client import BotApiClient, BotApiError
from bot_adapter.platform import ChatPlatform, Conversation, PlatformMessage, ReplyWriter

__all__ = ["BotApiClient", "BotApiError", "ChatPlatform", "Conversation", "HandleOutcome", "LinkingBot",
           "PlatformMessage", "ReplyWriter"]
