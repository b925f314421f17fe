"""/api/public/shared: a shared session, read by anyone with its link (no authentication).

Only two things are reachable: the transcript of the shared session, and the files on its share's
allowlist. A malformed token or file id is a 422 before anything is looked up; every other miss
(an unknown or rotated token, a file not on the list, a file deleted since) is the same 404, byte
for byte, so a caller learns nothing about what exists. Each client address has its own rate limit.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from api.deps import DbDep, RedisDep, SettingsDep, StorageDep
from api.errors import ApiError
from api.file_responses import file_download
from conversation import sharing
from limits.message_rate import MessageRateLimiter
from models.api import ErrorResponse
from models.sharing import SharedFile, SharedMessage, SharedTranscript
from workspace.files import file_bytes
from workspace.storage import StorageRefused

PREFIX = "/api/public/shared"
# The body of every miss, the same as the router's own 404 for a path that matches no route.
NOT_FOUND_MESSAGE = "Not Found"
# A shared page is public but its link is a secret: not cached on the way, not sent on as a referrer.
PUBLIC_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
# An inline file from this origin is shown, never run: a shared HTML or SVG file cannot script the API's origin.
FILE_HEADERS = {**PUBLIC_HEADERS, "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox"}

ShareToken = Annotated[str, Path(pattern=sharing.SHARE_TOKEN_PATTERN, description="The share's token (a UUID).")]
FileId = Annotated[str, Path(pattern=sharing.FILE_ID_PATTERN, description="A workspace file id (32 hex digits).")]


def not_shared() -> ApiError:
    return ApiError(404, "not_found", NOT_FOUND_MESSAGE)


async def limit_client_rate(request: Request, redis: RedisDep, settings: SettingsDep) -> None:
    """Counted before the path is validated, so guessing ids costs the same as reading."""
    address = request.client.host if request.client else "unknown"
    window = settings.public_rate_window_seconds
    decision = await MessageRateLimiter(redis, settings.public_rate_limit, window,
                                        scope=f"public:{window}s").hit(address)
    if not decision.allowed:
        raise ApiError(429, "rate_limited", f"More than {settings.public_rate_limit} requests in {window}s; "
                       f"try again in {decision.retry_after_seconds}s.",
                       headers={"Retry-After": str(decision.retry_after_seconds)})


router = APIRouter(prefix=PREFIX, tags=["public"], dependencies=[Depends(limit_client_rate)],
                   responses={404: {"model": ErrorResponse}, 429: {"model": ErrorResponse}})


def download_path(token: str, file_id: str) -> str:
    return f"{PREFIX}/{token}/files/{file_id}/download"


@router.get("/{share_token}", response_model=SharedTranscript)
async def read_shared_session(share_token: ShareToken, db: DbDep, response: Response) -> SharedTranscript:
    """The shared conversation as its owner saw it when sharing: user and assistant messages,
    tool calls and their results (no reasoning, no system markers, no user ids), and its files."""
    found = await sharing.shared_session(db, share_token)
    if found is None:
        raise not_shared()
    share, session = found
    messages = await sharing.shared_messages(db, share)
    files = await sharing.shared_files(db, share_token)
    response.headers.update(PUBLIC_HEADERS)
    return SharedTranscript(
        title=session.title, shared_at=share.shared_at,
        messages=[SharedMessage.model_validate(m, from_attributes=True) for m in messages],
        files=[SharedFile(id=f.id, name=f.name, content_type=f.content_type, size_bytes=f.size_bytes,
                          download_path=download_path(share_token, f.id)) for f in files],
    )


@router.get("/{share_token}/files/{file_id}/download", response_class=Response,
            responses={200: {"description": "The file's bytes, inline, with its MIME type and length.",
                             "content": {"application/octet-stream": {}}}})
async def download_shared_file(share_token: ShareToken, file_id: FileId, db: DbDep, storage: StorageDep) -> Response:
    """A file the shared conversation refers to, shown inline."""
    record = await sharing.shared_file(db, share_token, file_id)
    if record is None:
        raise not_shared()
    try:
        data = await file_bytes(storage, record)
    except (FileNotFoundError, NotADirectoryError, StorageRefused):  # deleted, or replaced by no file
        raise not_shared() from None
    return file_download(data, record, inline=True, headers=FILE_HEADERS)
