"""/api/workspace/files: the caller's workspace files, listed and downloaded."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.auth import CurrentUser
from api.deps import MAX_OFFSET, DbDep, StorageDep
from api.errors import not_found
from models.api import ErrorResponse, WorkspaceFileList, WorkspaceFileOut
from workspace.files import file_bytes, file_uri, list_files, owned_file
from workspace.storage import StorageRefused

router = APIRouter(prefix="/api/workspace/files", tags=["workspace"])
ERRORS = {401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}}


def file_out(record) -> WorkspaceFileOut:
    return WorkspaceFileOut(id=record.id, uri=file_uri(record.id), name=record.name, size_bytes=record.size_bytes,
                            content_type=record.content_type, session_id=record.session_id,
                            created_at=record.created_at)


@router.get("", response_model=WorkspaceFileList, responses=ERRORS)
async def list_workspace_files(user: CurrentUser, db: DbDep, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                               offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> list[WorkspaceFileOut]:
    return [file_out(r) for r in await list_files(db, user.id, limit, offset)]


# A file is served with the type it was stored with: text a tool wrote, or a tool output kept as JSON.
FILE_CONTENT = {"description": "The file's bytes, with the content type it was stored with.",
                "content": {"text/plain": {"schema": {"type": "string"}}, "application/json": {
                    "schema": {"description": "Any JSON: the document as the tool stored it."}}}}


@router.get("/{file_id}/content", responses={**ERRORS, 200: FILE_CONTENT}, response_class=Response)
async def download_workspace_file(file_id: str, user: CurrentUser, db: DbDep, storage: StorageDep) -> Response:
    record = await owned_file(db, user.id, file_id)
    if record is None:
        raise not_found("file")
    try:
        data = await file_bytes(storage, record)
    except (FileNotFoundError, StorageRefused):  # gone, or replaced by something that is no file
        raise not_found("file") from None
    return Response(data, media_type=record.content_type,
                    headers={"Content-Disposition": f'attachment; filename="{record.name}"'})
