"""Workspace file tools: write, read and list the user's files (`workspace://{file_id}`)."""

from pydantic import BaseModel, Field

from tools.base import Tool, ToolContext, ToolError
from workspace.files import WorkspaceError, file_uri, list_files, owned_file, save_file

READ_MAX_CHARS = 60_000


class WriteFileInput(BaseModel):
    name: str = Field(min_length=1, max_length=128, description="File name, e.g. notes.md (no folders).")
    content: str = Field(description="The text to store.")


class ReadFileInput(BaseModel):
    file: str = Field(description="A workspace://<id> reference or a file id.")


class ListFilesInput(BaseModel):
    limit: int = Field(default=50, ge=1, le=200)


def describe(record) -> dict:
    return {"uri": file_uri(record.id), "name": record.name, "size_bytes": record.size_bytes,
            "created_at": record.created_at.isoformat()}


async def write_workspace_file(arguments: WriteFileInput, context: ToolContext) -> dict:
    services = context.services
    async with services.sessions() as db:
        try:
            record = await save_file(db, services.storage, context.user_id, context.session_id, arguments.name,
                                     arguments.content.encode(), services.settings.workspace_max_file_bytes)
        except WorkspaceError as problem:
            raise ToolError(problem.code, problem.message)
    return describe(record)


async def read_workspace_file(arguments: ReadFileInput, context: ToolContext) -> dict:
    async with context.services.sessions() as db:
        record = await owned_file(db, context.user_id, arguments.file)
    if record is None:
        raise ToolError("not_found", "No such workspace file.")
    text = (await context.services.storage.get(context.user_id, record.id)).decode(errors="replace")
    return {**describe(record), "content": text[:READ_MAX_CHARS], "truncated": len(text) > READ_MAX_CHARS}


async def list_workspace_files(arguments: ListFilesInput, context: ToolContext) -> dict:
    async with context.services.sessions() as db:
        records = await list_files(db, context.user_id, arguments.limit)
    return {"files": [describe(r) for r in records]}


WRITE = Tool("write_workspace_file", "Stores a text file in the user's workspace; returns its workspace:// URI.",
             WriteFileInput, write_workspace_file)
READ = Tool("read_workspace_file", "Reads a text file from the user's workspace by its workspace:// URI.",
            ReadFileInput, read_workspace_file)
LIST = Tool("list_workspace_files", "Lists the files in the user's workspace, newest first.",
            ListFilesInput, list_workspace_files)
