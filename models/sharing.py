"""API schemas of a session's public share: what the owner gets, and what anyone with the link reads."""

from datetime import datetime
from typing import Any, Literal, Optional

from pydantic import BaseModel, Field


class ShareResponse(BaseModel):
    share_token: str = Field(description="A fresh random token; sharing again replaces it (the old one stops working).")
    share_url: str = Field(description="The share page on the front end: `{FRONTEND_ORIGIN}/share/{share_token}`.")
    shared_at: datetime
    file_count: int = Field(description="Workspace files the shared conversation refers to, and so can be opened.")


class SharedMessage(BaseModel):
    """A message as its owner saw it, without ids of users, turns or the session."""

    sequence: int
    role: Literal["user", "assistant", "tool"]
    content: str
    tool_calls: Optional[list[dict[str, Any]]] = None
    tool_call_id: Optional[str] = None
    created_at: datetime


class SharedFile(BaseModel):
    id: str
    name: str
    content_type: str
    size_bytes: int
    download_path: str = Field(description="The public download route of this file under this share.")


class SharedTranscript(BaseModel):
    title: Optional[str]
    shared_at: datetime
    messages: list[SharedMessage]
    files: list[SharedFile]
