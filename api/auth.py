"""Bearer JWTs (HS256): `sub` is the user id, `role: "admin"` marks operators."""

import time
from dataclasses import dataclass
from typing import Annotated, Optional

import jwt
from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import SettingsDep
from api.errors import ApiError
from models.text import unstorable

ALGORITHM = "HS256"
# Reads `Authorization: Bearer <token>` and puts the scheme in the spec; a missing or other scheme
# is None here, refused below with the API's own 401.
BEARER = HTTPBearer(auto_error=False, description="A JWT (HS256): `sub` is the user id, `role: admin` an operator.")


@dataclass(frozen=True)
class AuthenticatedUser:
    id: str
    is_admin: bool
    email: Optional[str] = None  # the token's `email` claim, when it is one


def issue_token(secret: str, user_id: str, role: str = "user", ttl_seconds: int = 30 * 24 * 3600,
                issuer: str = "", audience: str = "", email: str = "") -> str:
    """A token `current_user` accepts: pass the server's JWT_ISSUER / JWT_AUDIENCE when they are set."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": user_id, "role": role, "iat": now, "exp": now + ttl_seconds}
    if email:
        claims["email"] = email
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def _email(claims: dict) -> Optional[str]:
    """Shown to operators only: a claim that cannot be an address is dropped, never a reason to refuse the token."""
    email = claims.get("email")
    if isinstance(email, str) and 3 <= len(email) <= 320 and "@" in email and not unstorable(email):
        return email
    return None


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def current_user(settings: SettingsDep,
                 bearer: Annotated[Optional[HTTPAuthorizationCredentials], Depends(BEARER)]) -> AuthenticatedUser:
    if bearer is None or not bearer.credentials:
        raise _unauthorized("Send 'Authorization: Bearer <token>'.")
    try:
        claims = jwt.decode(bearer.credentials, settings.jwt_secret, algorithms=[ALGORITHM],
                            issuer=settings.jwt_issuer or None, audience=settings.jwt_audience or None,
                            options={"require": ["sub", "exp"], "verify_aud": bool(settings.jwt_audience)})
    except jwt.ExpiredSignatureError:
        raise _unauthorized("The token has expired.")
    except jwt.InvalidTokenError:
        raise _unauthorized("The token is not valid.")
    issued = claims.get("iat") if isinstance(claims.get("iat"), (int, float)) else time.time()
    if claims["exp"] - issued > settings.jwt_max_lifetime_seconds:
        raise _unauthorized("The token is valid for longer than this server accepts; ask for a shorter one.")
    user_id = claims.get("sub")
    # A user id is stored as the users table's key: at most 128 characters PostgreSQL can store.
    if not isinstance(user_id, str) or not user_id or len(user_id) > 128 or unstorable(user_id):
        raise _unauthorized("The token names no user.")
    return AuthenticatedUser(id=user_id, is_admin=claims.get("role") == "admin", email=_email(claims))


CurrentUser = Annotated[AuthenticatedUser, Depends(current_user)]
