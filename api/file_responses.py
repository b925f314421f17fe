"""A workspace file as an HTTP answer: its bytes, its MIME type and length, and a header-safe name."""

import re
from urllib.parse import quote

from fastapi import Response

from models.db import WorkspaceFile

# CR and LF would end the header (and start a forged one); NUL and the other control characters
# are refused by HTTP servers and clients alike.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """`attachment; filename="..."`: control characters stripped, `\\` and `"` escaped; a name that
    is not ASCII goes as RFC 5987's `filename*=UTF-8''...` instead."""
    cleaned = _CONTROL.sub("", filename)
    if not cleaned.isascii():
        return f"{disposition}; filename*=UTF-8''{quote(cleaned, safe='')}"
    escaped = cleaned.replace("\\", "\\\\").replace('"', '\\"')
    return f'{disposition}; filename="{escaped}"'


def file_download(data: bytes, record: WorkspaceFile, *, inline: bool = False,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(data, media_type=record.content_type, headers={
        **(headers or {}),
        "Content-Disposition": content_disposition(record.name, "inline" if inline else "attachment"),
        "Content-Length": str(len(data)),
    })
