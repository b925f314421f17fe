"""Workspace file tools: write, read and list the files of the user's workspace.

Files saved in a session are the files of the session's folder, which `bash_exec` sees as its
working directory `/workspace`: a saved script can be run there, and a file a command wrote can
be read back by its name."""

from pydantic import BaseModel, Field

from tools.base import Tool, ToolContext, ToolError
from workspace.files import (
    WorkspaceError,
    check_name,
    file_bytes,
    file_uri,
    list_files,
    owned_file,
    parse_file_ref,
    save_file,
)
from workspace.storage import StorageRefused, read_regular_file

READ_MAX_CHARS = 60_000


class WriteFileInput(BaseModel):
    name: str = Field(min_length=1, max_length=128, description="File name, e.g. notes.md (no folders).")
    content: str = Field(description="The text to store.")


class ReadFileInput(BaseModel):
    file: str = Field(description="A workspace://<id> reference, or the name of a file in this session's "
                                  "working directory (one a command wrote, say).")


class ListFilesInput(BaseModel):
    limit: int = Field(default=50, ge=1, le=200)


def describe(record) -> dict:
    return {"uri": file_uri(record.id), "name": record.name, "content_type": record.content_type,
            "size_bytes": record.size_bytes, "created_at": record.created_at.isoformat()}


def _text(data: bytes) -> dict:
    text = data.decode(errors="replace")
    return {"content": text[:READ_MAX_CHARS], "truncated": len(text) > READ_MAX_CHARS}


async def write_workspace_file(arguments: WriteFileInput, context: ToolContext) -> dict:
    services = context.services
    async with services.sessions() as db:
        try:
            record = await save_file(db, services.storage, context.user_id, context.session_id, arguments.name,
                                     arguments.content.encode(), services.settings.workspace_max_file_bytes,
                                     session_quota_bytes=services.settings.workspace_quota_bytes)
        except WorkspaceError as problem:
            raise ToolError(problem.code, problem.message)
        except StorageRefused:
            raise ToolError("invalid_name", f"'{arguments.name}' is a folder or a link in the working directory.")
    return describe(record)


async def read_workspace_file(arguments: ReadFileInput, context: ToolContext) -> dict:
    storage = context.services.storage
    if parse_file_ref(arguments.file) is None:  # a name in this session's folder
        try:
            name = check_name(arguments.file)
            data = read_regular_file(storage.session_folder(context.session_id) / name, READ_MAX_CHARS * 4)
        except (WorkspaceError, FileNotFoundError, StorageRefused):
            raise ToolError("not_found", "No such workspace file.")
        return {"name": name, **_text(data)}
    async with context.services.sessions() as db:
        record = await owned_file(db, context.user_id, arguments.file)
    if record is None:
        raise ToolError("not_found", "No such workspace file.")
    try:
        data = await file_bytes(storage, record)
    except (FileNotFoundError, StorageRefused):
        raise ToolError("not_found", "The file is no longer in the workspace.")
    return {**describe(record), **_text(data)}


async def list_workspace_files(arguments: ListFilesInput, context: ToolContext) -> dict:
    async with context.services.sessions() as db:
        records = await list_files(db, context.user_id, arguments.limit)
    folder = context.services.storage.session_folder(context.session_id)
    here = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.is_symlink())[:arguments.limit]
    return {"files": [describe(r) for r in records], "working_directory": here}


WRITE = Tool("write_workspace_file", "Stores a text file in this session's working directory (where bash_exec "
             "runs) and the user's workspace; returns its workspace:// URI.", WriteFileInput, write_workspace_file)
READ = Tool("read_workspace_file", "Reads a text file by its workspace:// URI, or by its name in this session's "
            "working directory.", ReadFileInput, read_workspace_file)
LIST = Tool("list_workspace_files", "Lists the user's workspace files, newest first, and the file names in this "
            "session's working directory.", ListFilesInput, list_workspace_files)
