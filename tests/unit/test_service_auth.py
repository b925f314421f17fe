"""Service credentials (the platform bots'): what settings accept, which caller a token is, and
the development token that only a developer's machine takes."""

from datetime import datetime, timedelta, timezone

import pytest

from api.service_auth import ServiceKind, credentials_for, matching_caller
from models.platform_api import BotChatRequest, CreateServerLinkTokenRequest
from models.platform_links import PlatformLinkToken
from models.platforms import Platform
from platform_linking.links import owner_tag, token_status
from settings import DEVELOPMENT_BOT_TOKEN, Settings, UnsafeConfiguration

SECRET = "test-secret-0123456789abcdef-0123456789"
DISCORD = "d" * 40
TELEGRAM = "t" * 40


def bot_settings(**changes) -> Settings:
    return Settings(_env_file=None, jwt_secret=SECRET, **changes)


def test_a_token_is_the_caller_of_its_platform_only():
    credentials = credentials_for(bot_settings(platform_bot_tokens={"DISCORD": DISCORD, "TELEGRAM": TELEGRAM}),
                                  ServiceKind.PLATFORM_BOT)
    assert matching_caller(DISCORD, credentials).scopes == frozenset({"DISCORD"})
    assert matching_caller(TELEGRAM, credentials).scopes == frozenset({"TELEGRAM"})
    for wrong in (DISCORD[:-1], DISCORD + "d", "", DISCORD.upper(), "\udcff" * 40):
        assert matching_caller(wrong, credentials) is None


def test_no_tokens_no_callers_outside_development():
    assert credentials_for(bot_settings(), ServiceKind.PLATFORM_BOT) == []
    assert matching_caller(DEVELOPMENT_BOT_TOKEN, credentials_for(bot_settings(), ServiceKind.PLATFORM_BOT)) is None


def test_the_development_token_is_for_development_only():
    development = bot_settings(app_env="development")
    caller = matching_caller(DEVELOPMENT_BOT_TOKEN, credentials_for(development, ServiceKind.PLATFORM_BOT))
    assert caller.scopes == frozenset(p.value for p in Platform)
    with pytest.raises(UnsafeConfiguration, match="PLATFORM_BOT_TOKENS"):
        bot_settings(platform_bot_tokens={"DISCORD": DEVELOPMENT_BOT_TOKEN}).refuse_unsafe()
    # Configured tokens replace it, in development too.
    configured = bot_settings(app_env="development", platform_bot_tokens={"DISCORD": DISCORD})
    assert matching_caller(DEVELOPMENT_BOT_TOKEN, credentials_for(configured, ServiceKind.PLATFORM_BOT)) is None


@pytest.mark.parametrize("tokens", [{"MYSPACE": DISCORD}, {"DISCORD": "short"}, {"DISCORD": "has space " * 5},
                                    {"DISCORD": "é" * 40}, {"discord": DISCORD}])
def test_bad_bot_tokens_are_no_setting(tokens):
    with pytest.raises(ValueError, match="PLATFORM_BOT_TOKENS"):
        bot_settings(platform_bot_tokens=tokens)


def test_a_bot_token_is_never_the_jwt_secret_and_is_redacted():
    with pytest.raises(UnsafeConfiguration, match="JWT secret"):
        bot_settings(platform_bot_tokens={"DISCORD": SECRET}).refuse_unsafe()
    assert DISCORD in bot_settings(platform_bot_tokens={"DISCORD": DISCORD}).secret_values


def test_settings_read_the_tokens_as_json(monkeypatch):
    monkeypatch.setenv("PLATFORM_BOT_TOKENS", f'{{"DISCORD": "{DISCORD}"}}')
    assert bot_settings().platform_bot_tokens == {"DISCORD": DISCORD}


def _token(expires_in: float, used: bool = False, superseded_after: float | None = None) -> PlatformLinkToken:
    now = datetime.now(timezone.utc)
    created = now - timedelta(minutes=10)
    expires = now + timedelta(seconds=expires_in)
    return PlatformLinkToken(token="t", link_type="SERVER", platform="DISCORD", target_id="g", created_at=created,
                             expires_at=expires, used_at=now if used else None,
                             superseded_at=created + timedelta(seconds=superseded_after)
                             if superseded_after is not None else None)


def test_token_status_is_whatever_ended_it_first():
    now = datetime.now(timezone.utc)
    assert token_status(_token(60), now) == "pending"
    assert token_status(_token(60, used=True), now) == "linked"
    assert token_status(_token(-1), now) == "expired"
    assert token_status(_token(60, superseded_after=1), now) == "superseded"
    assert token_status(_token(-1, superseded_after=1), now) == "superseded"  # superseded, then its time ran out
    assert token_status(_token(-120, superseded_after=9 * 60), now) == "expired"  # expired, then superseded


def test_logs_name_an_owner_by_a_short_suffix():
    assert owner_tag("user-0123456789abcdef") == "…89abcdef"


def test_bot_request_bodies():
    with pytest.raises(ValueError):
        CreateServerLinkTokenRequest(platform="DISCORD", platform_server_id="g", unknown=1)
    with pytest.raises(ValueError):
        BotChatRequest(platform="DISCORD", platform_user_id="p\n", message="hi")
    assert BotChatRequest(platform="TELEGRAM", platform_user_id="-1001234", message="hi").platform_server_id is None
