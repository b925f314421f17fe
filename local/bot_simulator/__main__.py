"""A pretend Discord (or Telegram, ...) server in the terminal, run against `make dev`: its bot is
the reference adapter (`bot_adapter.LinkingBot`) talking to the bot API with the bot's credential.

    python -m local.bot_simulator link --confirm-with "$TOKEN"   # link the pretend server to you
    python -m local.bot_simulator say --as alice "What time is it?"
    python -m local.bot_simulator say --as bob "And in Tokyo?"
    python -m local.bot_simulator dm-link --as alice --confirm-with "$TOKEN"
    python -m local.bot_simulator dm --as alice "hello"
    python -m local.bot_simulator chat                           # interactive: /as NAME, /dm, /server, /quit

Without `--confirm-with`, `link` prints the link page's URL and the `curl` that confirms it (what
the front end's page does for a signed-in person). The bot token defaults to the development
one that `make dev` (APP_ENV=development) accepts when PLATFORM_BOT_TOKENS is not set.
"""

import argparse
import asyncio
import os
import sys
from typing import Optional
from urllib.parse import urlsplit

import httpx

from bot_adapter import BotApiClient, Conversation, LinkingBot, PlatformMessage
from bot_adapter.bot import LINK_COMMAND, HandleOutcome
from models.platforms import Platform
from settings import DEVELOPMENT_BOT_TOKEN

DEFAULT_API = f"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}"


class TerminalReply:
    def __init__(self, label: str):
        self.label = label
        self.started = False

    async def write(self, text: str) -> None:
        if not self.started:
            print(f"{self.label} bot: ", end="", flush=True)
            self.started = True
        print(text, end="", flush=True)

    async def close(self) -> None:
        if self.started:
            print(flush=True)


class TerminalPlatform:
    """The `ChatPlatform` of the simulator: the bot's messages go to the terminal."""

    def _label(self, conversation: Conversation) -> str:
        return "[DM]" if conversation.is_direct else f"[{conversation.server_name} #{conversation.channel_id}]"

    async def send(self, conversation: Conversation, text: str) -> None:
        print(f"{self._label(conversation)} bot: {text}", flush=True)

    async def open_reply(self, conversation: Conversation) -> TerminalReply:
        return TerminalReply(self._label(conversation))


def _member_id(name: str) -> str:
    return f"sim-user-{name}"


def _message(args: argparse.Namespace, text: str, direct: bool) -> PlatformMessage:
    where = Conversation(None, None) if direct else Conversation(args.server_id, args.channel, args.server_name)
    return PlatformMessage(where, _member_id(args.author), args.author, text)


async def _confirm(api_url: str, user_token: str, link_url: str, direct: bool) -> None:
    """Plays the front end's link page: reads the token's info, then confirms it as the signed-in user."""
    token = urlsplit(link_url).path.rstrip("/").rsplit("/", 1)[-1]
    route = "user-tokens" if direct else "tokens"
    headers = {"Authorization": f"Bearer {user_token}"}
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        info = await http.get(f"/api/platform-linking/tokens/{token}/info", headers=headers)
        if info.status_code != 200:
            raise SystemExit(f"link page: {info.status_code} {info.text}")
        confirmed = await http.post(f"/api/platform-linking/{route}/{token}/confirm", headers=headers)
    if confirmed.status_code != 200:
        raise SystemExit(f"confirm: {confirmed.status_code} {confirmed.text}")
    print(f"linked: {confirmed.json()['platform']} link {confirmed.json()['id']}", flush=True)


def _confirm_hint(api_url: str, link_url: str, direct: bool) -> str:
    token = urlsplit(link_url).path.rstrip("/").rsplit("/", 1)[-1]
    route = "user-tokens" if direct else "tokens"
    return (f"confirm it as yourself (what the link page does):\n  curl -s -X POST {api_url}/api/platform-linking/"
            f"{route}/{token}/confirm -H \"Authorization: Bearer $TOKEN\"")


async def _link(bot: LinkingBot, args: argparse.Namespace, direct: bool) -> int:
    outcome = await bot.handle(_message(args, LINK_COMMAND, direct))
    if outcome.kind != "link_offered":
        return 1
    if args.confirm_with:
        await _confirm(args.api, args.confirm_with, outcome.text, direct)
    else:
        print(_confirm_hint(args.api, outcome.text, direct), flush=True)
    return 0


def _exit_code(outcome: HandleOutcome) -> int:
    return 1 if outcome.kind == "refused" else 0


async def _interactive(bot: LinkingBot, args: argparse.Namespace) -> int:
    direct = False
    print(f"Pretend {args.platform} server '{args.server_name}', channel #{args.channel}. You are {args.author}.\n"
          f"Type messages; {LINK_COMMAND} links, !stop stops; /as NAME, /dm, /server, /quit.", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() == "/quit":
            return 0
        line = line.strip()
        if line.startswith("/as "):
            args.author = line[4:].strip() or args.author
        elif line == "/dm":
            direct = True
        elif line == "/server":
            direct = False
        elif line:
            await bot.handle(_message(args, line, direct))


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.bot_simulator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", default=os.environ.get("COPILOT_API_URL", DEFAULT_API))
    parser.add_argument("--bot-token", default=os.environ.get("PLATFORM_BOT_TOKEN", DEVELOPMENT_BOT_TOKEN))
    parser.add_argument("--platform", default="DISCORD", choices=[p.value for p in Platform])
    parser.add_argument("--server-id", default="sim-server-1")
    parser.add_argument("--server-name", default="Pretend server")
    parser.add_argument("--channel", default="general")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (("link", "link the pretend server"), ("dm-link", "link a member's direct messages")):
        command = commands.add_parser(name, help=helptext)
        command.add_argument("--as", dest="author", default="alice")
        command.add_argument("--confirm-with", metavar="USER_JWT", help="confirm it as this signed-in user")
    for name, helptext in (("say", "a member writes in the server's channel"), ("dm", "a member writes a DM")):
        command = commands.add_parser(name, help=helptext)
        command.add_argument("--as", dest="author", default="alice")
        command.add_argument("text")
    command = commands.add_parser("status", help="a link token's status")
    command.add_argument("token")
    command = commands.add_parser("chat", help="interactive")
    command.add_argument("--as", dest="author", default="alice")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    async with BotApiClient(args.api, args.bot_token, args.platform) as api:
        bot = LinkingBot(api, TerminalPlatform())
        if args.command in ("link", "dm-link"):
            return await _link(bot, args, direct=args.command == "dm-link")
        if args.command in ("say", "dm"):
            return _exit_code(await bot.handle(_message(args, args.text, direct=args.command == "dm")))
        if args.command == "status":
            print((await api.link_token_status(args.token)).status, flush=True)
            return 0
        return await _interactive(bot, args)


def main(argv: Optional[list[str]] = None) -> int:
    try:
        return asyncio.run(run(parse_args(argv)))
    except httpx.ConnectError:
        print("cannot reach the API: is `make dev` running (or pass --api)?", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
