"""What a linking bot does with each message it receives, whatever the platform.

- `!link` in a server: a link token for the server, shown as the link page's URL (the first
  person to confirm it owns the server); in a DM: a token for the person's own DMs.
- `!stop`: stops the conversation's running answer.
- Anything else: a copilot turn for the conversation's owner, its answer streamed into a reply.
  Not linked yet, or the owner over a limit: the API's refusal, shown as it is.
"""

from dataclasses import dataclass
from typing import Literal, Optional

from bot_adapter.client import BotApiClient, BotApiError
from bot_adapter.platform import ChatPlatform, Conversation, PlatformMessage
from models.platform_api import ChatTurnHandle

LINK_COMMAND = "!link"
STOP_COMMAND = "!stop"


@dataclass
class HandleOutcome:
    kind: Literal["link_offered", "answered", "queued", "refused", "stopped"]
    text: str = ""  # the answer (answered), the link (link_offered), the refusal's message
    handle: Optional[ChatTurnHandle] = None
    error: Optional[BotApiError] = None


def _conversation_key(conversation: Conversation, author_id: str) -> tuple[Optional[str], Optional[str]]:
    return (conversation.platform_server_id, conversation.channel_id) if not conversation.is_direct \
        else (None, author_id)


class LinkingBot:
    def __init__(self, api: BotApiClient, platform: ChatPlatform, name_authors: bool = True):
        self.api = api
        self.platform = platform
        # In a server several people talk to one assistant: it reads who said what.
        self.name_authors = name_authors
        self._sessions: dict[tuple[Optional[str], Optional[str]], str] = {}

    async def handle(self, message: PlatformMessage) -> HandleOutcome:
        text = message.text.strip()
        if text == LINK_COMMAND:
            return await self._offer_link(message)
        if text == STOP_COMMAND:
            return await self._stop(message)
        return await self._chat(message)

    async def _offer_link(self, message: PlatformMessage) -> HandleOutcome:
        where = message.conversation
        try:
            if where.is_direct:
                token = await self.api.create_user_link_token(message.author_id, message.author_name)
                notice = "Open this link, signed in, to link your direct messages to your account"
            else:
                token = await self.api.create_server_link_token(where.platform_server_id, where.server_name)
                notice = "Open this link, signed in, to link this server to your account (its usage bills to you)"
        except BotApiError as refusal:
            return await self._refused(where, refusal)
        await self.platform.send(where, f"{notice}: {token.link_url} (valid for 30 minutes)")
        return HandleOutcome("link_offered", token.link_url)

    async def _stop(self, message: PlatformMessage) -> HandleOutcome:
        session_id = self._sessions.get(_conversation_key(message.conversation, message.author_id))
        stopped = bool(session_id) and await self.api.stop(session_id)
        await self.platform.send(message.conversation, "Stopped." if stopped else "Nothing is running.")
        return HandleOutcome("stopped", "Stopped." if stopped else "")

    async def _chat(self, message: PlatformMessage) -> HandleOutcome:
        where = message.conversation
        text = message.text if where.is_direct or not self.name_authors else f"{message.author_name}: {message.text}"
        try:
            handle = await self.api.start_chat_turn(message.author_id, text, where.platform_server_id,
                                                    where.channel_id, idempotency_key=message.message_id)
        except BotApiError as refusal:
            return await self._refused(where, refusal)
        self._sessions[_conversation_key(where, message.author_id)] = handle.session_id
        if handle.queued:  # the running answer takes it in (mid-turn, or in the turn it continues into)
            return HandleOutcome("queued", handle=handle)
        return HandleOutcome("answered", await self._relay(where, handle), handle)

    async def _relay(self, where: Conversation, handle: ChatTurnHandle) -> str:
        reply = await self.platform.open_reply(where)
        answer = []
        try:
            async for part in self.api.stream_parts(handle):
                if part.get("type") == "text-delta":
                    answer.append(part["delta"])
                    await reply.write(part["delta"])
                elif part.get("type") == "error":
                    await reply.write(f"\n[{part.get('errorText', 'error')}]")
        finally:
            await reply.close()
        return "".join(answer)

    async def _refused(self, where: Conversation, refusal: BotApiError) -> HandleOutcome:
        if refusal.code == "not_linked":
            shown = (f"I'm not linked yet: type {LINK_COMMAND} to link "
                     + ("your direct messages." if where.is_direct else "this server."))
        else:
            shown = refusal.message
        await self.platform.send(where, shown)
        return HandleOutcome("refused", shown, error=refusal)
