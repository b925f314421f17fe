"""The chat platforms a bot links from and the two kinds of link: plain values, shared by the
tables (`models/platform_links.py`), the API bodies, the settings and the bot adapter."""

from enum import Enum

# A link token lives this long (30 minutes), is used once, and a newer token for the same target
# supersedes it.
LINK_TOKEN_TTL_SECONDS = 30 * 60
TOKEN_MAX_CHARS = 64
PLATFORM_ID_MAX_CHARS = 255


class Platform(str, Enum):
    DISCORD = "DISCORD"
    TELEGRAM = "TELEGRAM"
    SLACK = "SLACK"
    TEAMS = "TEAMS"
    WHATSAPP = "WHATSAPP"


class LinkType(str, Enum):
    SERVER = "SERVER"  # a server or group: its first confirmer owns it, and every member's usage bills to them
    USER = "USER"  # one person's direct messages with the bot, linked to their own account
