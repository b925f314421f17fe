"""Test users: a fresh id and a signed token each."""

import uuid
from dataclasses import dataclass

from api.auth import issue_token
from settings import Settings


@dataclass
class User:
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_user(settings: Settings) -> User:
    user_id = f"user-{uuid.uuid4().hex[:10]}"
    return User(user_id, issue_token(settings.jwt_secret, user_id, issuer=settings.jwt_issuer,
                                     audience=settings.jwt_audience))
