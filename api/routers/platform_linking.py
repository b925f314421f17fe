"""/api/platform-linking: what a signed-in person does with chat-platform links: read a link
token's display info, confirm it (a server, or their own DMs), list and delete their links.

Each route takes a user's JWT; a bot's service credential is no JWT and is refused (401)."""

from typing import Annotated

from fastapi import APIRouter, Path

from api.auth import CurrentUser
from api.deps import DbDep
from api.errors import ApiError
from models.api import ErrorResponse
from models.platform_api import (
    TOKEN_PATTERN,
    ConfirmLinkResponse,
    ConfirmUserLinkResponse,
    DeleteLinkResponse,
    LinkTokenInfoResponse,
    PlatformLinkInfo,
    PlatformLinkList,
    PlatformUserLinkInfo,
    PlatformUserLinkList,
)
from models.platform_links import PlatformServerLink, PlatformUserLink
from models.platforms import TOKEN_MAX_CHARS
from platform_linking import links
from platform_linking.errors import (
    LinkAlreadyExists,
    LinkFlowMismatch,
    LinkingError,
    LinkTokenExpired,
    NotAuthorized,
    NotFound,
)

router = APIRouter(prefix="/api/platform-linking", tags=["platform-linking"])

TokenPath = Annotated[str, Path(max_length=TOKEN_MAX_CHARS, pattern=TOKEN_PATTERN,
                                description="A link token: at most 64 characters of A-Z, a-z, 0-9, '_' and '-'.")]
ERROR = {"model": ErrorResponse}
TOKEN_ERRORS = {404: ERROR, 410: ERROR}
CONFIRM_ERRORS = {400: ERROR, 404: ERROR, 409: ERROR, 410: ERROR}
DELETE_ERRORS = {403: ERROR, 404: ERROR}


def linking_refusal(error: LinkingError) -> ApiError:
    """Each refusal's status and code (in this order: the seed's translation)."""
    if isinstance(error, NotFound):
        return ApiError(404, "not_found", str(error))
    if isinstance(error, NotAuthorized):
        return ApiError(403, "not_link_owner", str(error))
    if isinstance(error, LinkAlreadyExists):
        return ApiError(409, "already_linked", str(error))
    if isinstance(error, LinkTokenExpired):
        return ApiError(410, "link_token_expired", str(error), details={"reason": error.reason})
    if isinstance(error, LinkFlowMismatch):
        return ApiError(400, "link_flow_mismatch", str(error))
    raise error


def server_link_info(link: PlatformServerLink) -> dict:
    return {"id": link.id, "platform": link.platform, "platform_server_id": link.platform_server_id,
            "server_name": link.server_name, "linked_at": link.created_at}


def user_link_info(link: PlatformUserLink) -> dict:
    return {"id": link.id, "platform": link.platform, "platform_user_id": link.platform_user_id,
            "platform_username": link.platform_username, "linked_at": link.created_at}


@router.get("/tokens/{token}/info", response_model=LinkTokenInfoResponse, responses=TOKEN_ERRORS,
            summary="Get display info for a link token")
async def get_link_token_info(token: TokenPath, _user: CurrentUser, db: DbDep) -> LinkTokenInfoResponse:
    try:
        row = await links.open_token(db, token)
    except LinkingError as error:
        raise linking_refusal(error)
    return LinkTokenInfoResponse(platform=row.platform, link_type=row.link_type, display_name=row.display_name,
                                 expires_at=row.expires_at)


@router.post("/tokens/{token}/confirm", response_model=ConfirmLinkResponse, responses=CONFIRM_ERRORS,
             summary="Confirm a SERVER link token (user must be authenticated)")
async def confirm_link_token(token: TokenPath, user: CurrentUser, db: DbDep) -> ConfirmLinkResponse:
    """The caller becomes the server's owner: every member's messages to the bot run as the
    caller's turns, within the caller's limits. Of concurrent confirms exactly one wins; the
    others get `410` (already used)."""
    try:
        link = await links.confirm_server_link(db, token, user.id)
    except LinkingError as error:
        raise linking_refusal(error)
    return ConfirmLinkResponse(**server_link_info(link))


@router.post("/user-tokens/{token}/confirm", response_model=ConfirmUserLinkResponse, responses=CONFIRM_ERRORS,
             summary="Confirm a USER link token (user must be authenticated)")
async def confirm_user_link_token(token: TokenPath, user: CurrentUser, db: DbDep) -> ConfirmUserLinkResponse:
    try:
        link = await links.confirm_user_link(db, token, user.id)
    except LinkingError as error:
        raise linking_refusal(error)
    return ConfirmUserLinkResponse(**user_link_info(link))


@router.get("/links", response_model=PlatformLinkList,
            summary="List all platform servers linked to the authenticated user")
async def list_my_links(user: CurrentUser, db: DbDep) -> list[PlatformLinkInfo]:
    return [PlatformLinkInfo(**server_link_info(link)) for link in await links.list_links(db, links.SERVER, user.id)]


@router.get("/user-links", response_model=PlatformUserLinkList,
            summary="List all DM links for the authenticated user")
async def list_my_user_links(user: CurrentUser, db: DbDep) -> list[PlatformUserLinkInfo]:
    return [PlatformUserLinkInfo(**user_link_info(link)) for link in await links.list_links(db, links.USER, user.id)]


@router.delete("/links/{link_id}", response_model=DeleteLinkResponse, responses=DELETE_ERRORS,
               summary="Unlink a platform server")
async def delete_link(link_id: str, user: CurrentUser, db: DbDep) -> DeleteLinkResponse:
    """From now on the bot is refused for this server (its conversations' sessions stay yours)."""
    try:
        return DeleteLinkResponse(id=await links.delete_link(db, links.SERVER, link_id, user.id))
    except LinkingError as error:
        raise linking_refusal(error)


@router.delete("/user-links/{link_id}", response_model=DeleteLinkResponse, responses=DELETE_ERRORS,
               summary="Unlink a DM / user link")
async def delete_user_link(link_id: str, user: CurrentUser, db: DbDep) -> DeleteLinkResponse:
    try:
        return DeleteLinkResponse(id=await links.delete_link(db, links.USER, link_id, user.id))
    except LinkingError as error:
        raise linking_refusal(error)
