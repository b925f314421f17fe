"""Service credentials: callers that are services, not people, such as a platform's bot.

A service sends `Authorization: Bearer <its token>`; the token is compared, in constant time,
with every configured credential of the kind the route takes. A user's JWT is never one (it
fails here with a 401), and a service token is never a JWT (it fails `api.auth.current_user`),
so the two kinds of route cannot be reached with each other's credential.

Each credential names what it may act for (`scopes`: a bot token its platform). Another kind of
service (issue 16's AutoPilot graph block, which calls on behalf of a user it names) adds its own
`ServiceKind` and a `credentials_for` entry, and reuses `require_service`.
"""

import hmac
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Callable, Optional

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import SettingsDep
from api.errors import ApiError
from settings import Settings

SERVICE_BEARER = HTTPBearer(auto_error=False, scheme_name="ServiceToken",
                            description="A service credential (a platform bot's token), not a user's JWT.")


class ServiceKind(str, Enum):
    PLATFORM_BOT = "platform_bot"
    # Runs turns on behalf of the user it names (the AutoPilot graph block of another service).
    TURNS_FOR_USERS = "turns_for_users"


ANY_USER = "*"


@dataclass(frozen=True)
class ServiceCaller:
    kind: ServiceKind
    scopes: frozenset[str]  # what it may act for: a bot's platforms

    def may_act_for(self, scope: str) -> bool:
        return scope in self.scopes


@dataclass(frozen=True)
class ServiceCredential:
    caller: ServiceCaller
    secret: bytes


def credentials_for(settings: Settings, kind: ServiceKind) -> list[ServiceCredential]:
    """One credential per distinct token; a token configured for several platforms acts for each."""
    if kind is ServiceKind.PLATFORM_BOT:
        scopes: dict[str, set[str]] = {}
        for platform, token in settings.bot_tokens.items():
            scopes.setdefault(token, set()).add(platform)
        return [ServiceCredential(ServiceCaller(kind, frozenset(platforms)), token.encode())
                for token, platforms in scopes.items()]
    if kind is ServiceKind.TURNS_FOR_USERS:
        return [ServiceCredential(ServiceCaller(kind, frozenset({ANY_USER})), token.encode())
                for token in dict.fromkeys(settings.service_tokens)]
    raise ValueError(f"no credentials for {kind}")


def matching_caller(presented: str, credentials: list[ServiceCredential]) -> Optional[ServiceCaller]:
    """The caller whose secret is `presented`. Every secret is compared, in constant time, so the
    answer's timing says nothing of which one, or how much of it, matched."""
    given = presented.encode("utf-8", "surrogateescape")
    found = None
    for credential in credentials:
        if hmac.compare_digest(given, credential.secret):
            found = credential.caller
    return found


def _refused(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def _looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


def require_service(kind: ServiceKind) -> Callable[..., ServiceCaller]:
    def service_caller(settings: SettingsDep, bearer: Annotated[Optional[HTTPAuthorizationCredentials],
                                                                 Depends(SERVICE_BEARER)]) -> ServiceCaller:
        if bearer is None or not bearer.credentials:
            raise _refused("Send 'Authorization: Bearer <service token>'.")
        caller = matching_caller(bearer.credentials, credentials_for(settings, kind))
        if caller is None:
            if _looks_like_jwt(bearer.credentials):
                raise _refused("This route takes a service credential, not a user's token.")
            raise _refused("The service token is not valid.")
        return caller

    return service_caller


BotCaller = Annotated[ServiceCaller, Depends(require_service(ServiceKind.PLATFORM_BOT))]
TurnServiceCaller = Annotated[ServiceCaller, Depends(require_service(ServiceKind.TURNS_FOR_USERS))]
