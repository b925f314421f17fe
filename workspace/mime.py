"""A workspace file's MIME type, from its bytes first and its name second.

The bytes win: a PNG saved as `chart.txt` is served as the image it is, and a file named `.png`
that holds text is not served as an image. Names are read with Python's built-in table only (not
the host's /etc/mime.types), so every machine stores the same type for the same file.
"""

import mimetypes

OCTET_STREAM = "application/octet-stream"
TEXT = "text/plain"

# Leading bytes of formats a tool or a command commonly writes.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"\x1f\x8b", "application/gzip"),
)
# Containers whose members the name tells apart (a .docx is a zip file).
_ZIP = b"PK\x03\x04"
_RIFF_WEBP = (b"RIFF", b"WEBP")
# Common in a copilot's workspace, missing from Python's table.
_EXTRA_BY_SUFFIX = {
    ".md": "text/markdown", ".markdown": "text/markdown", ".yaml": "application/yaml", ".yml": "application/yaml",
    ".toml": "application/toml", ".log": TEXT, ".ipynb": "application/x-ipynb+json",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
_BUILT_IN = mimetypes.MimeTypes()


def _from_name(name: str) -> str | None:
    suffix = name[name.rfind("."):].lower() if "." in name else ""
    return _EXTRA_BY_SUFFIX.get(suffix) or _BUILT_IN.guess_type(name, strict=False)[0]


def _is_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(ch < " " and ch not in "\t\n\r\f\v" for ch in text)


def _textual(mime: str) -> bool:
    return mime.startswith("text/") or mime in ("application/json", "application/yaml", "application/toml",
                                                "application/javascript", "application/x-sh", "image/svg+xml",
                                                "application/x-ipynb+json", "application/xml")


def detect_mime_type(name: str, data: bytes) -> str:
    for signature, mime in _SIGNATURES:
        if data.startswith(signature):
            return mime
    if data[:4] == _RIFF_WEBP[0] and data[8:12] == _RIFF_WEBP[1]:
        return "image/webp"
    by_name = _from_name(name)
    if data.startswith(_ZIP):
        return by_name if by_name and not _textual(by_name) else "application/zip"
    if _is_text(data):
        return by_name if by_name and _textual(by_name) else TEXT
    # Binary bytes under a text name (or no name we know) are no text to show.
    return by_name if by_name and not _textual(by_name) else OCTET_STREAM
