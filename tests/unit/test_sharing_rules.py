"""The pure rules of public sharing: the download header's file name (the seed's cases), the
download answer itself, the `workspace://` reference scan, and a stored file's MIME type."""

import json

from api.file_responses import content_disposition, file_download
from models.db import WorkspaceFile
from workspace.mime import detect_mime_type
from workspace.references import referenced_file_ids

FILE_A = "0123456789abcdef0123456789abcdef"
FILE_B = "fedcba9876543210fedcba9876543210"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def test_ascii_names_are_quoted_and_escaped():
    assert content_disposition("report.pdf") == 'attachment; filename="report.pdf"'
    assert content_disposition("image.png", "inline") == 'inline; filename="image.png"'
    assert content_disposition('file"name.txt') == 'attachment; filename="file\\"name.txt"'
    assert content_disposition("") == 'attachment; filename=""'


def test_control_characters_cannot_break_the_header():
    assert content_disposition("a\rb\nc\x00d.txt") == 'attachment; filename="abcd.txt"'
    assert content_disposition("evil.txt\r\nX-Injected: true") == 'attachment; filename="evil.txtX-Injected: true"'
    assert content_disposition("tab\there\x01\x7f.txt") == 'attachment; filename="tabhere.txt"'
    assert content_disposition("back\\slash.txt") == 'attachment; filename="back\\\\slash.txt"'


def test_names_beyond_ascii_use_rfc_5987():
    japanese = content_disposition("日本語.pdf")
    assert japanese.startswith("attachment; ") and "filename*=UTF-8''" in japanese
    assert japanese == "attachment; filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.pdf"
    assert content_disposition("图片.png", "inline").startswith("inline; filename*=UTF-8''")
    assert "\r" not in content_disposition("图\r\n片.png") and "\n" not in content_disposition("图\r\n片.png")


def _record(name: str, content_type: str, size: int) -> WorkspaceFile:
    return WorkspaceFile(id=FILE_A, user_id="u", name=name, size_bytes=size, content_type=content_type)


def test_a_download_carries_its_type_length_and_disposition():
    default = file_download(b"binary data", _record("data.bin", "application/octet-stream", 11))
    assert default.headers["content-type"] == "application/octet-stream"
    assert default.headers["content-length"] == "11"
    assert default.headers["content-disposition"] == 'attachment; filename="data.bin"'
    inline = file_download(PNG, _record("photo.png", "image/png", len(PNG)), inline=True)
    assert inline.headers["content-type"] == "image/png" and inline.body == PNG
    assert inline.headers["content-disposition"] == 'inline; filename="photo.png"'
    forged = file_download(b"x", _record("a\r\nSet-Cookie: x=1.png", "image/png", 1), inline=True)
    assert forged.headers["content-disposition"] == 'inline; filename="aSet-Cookie: x=1.png"'
    assert "set-cookie" not in forged.headers
    assert file_download(b"z" * 1000, _record("big.txt", "text/plain", 1000)).headers["content-length"] == "1000"


def test_references_are_found_in_text_with_or_without_a_mime_suffix():
    text = f"See workspace://{FILE_A}#image/png and (workspace://{FILE_B})."
    assert referenced_file_ids([text]) == {FILE_A, FILE_B}
    assert referenced_file_ids([f"workspace://{FILE_A}#text/plain; workspace://{FILE_A}"]) == {FILE_A}


def test_references_are_found_in_nested_and_escaped_json():
    inner = json.dumps({"file": f"workspace://{FILE_A}"})  # JSON text inside a JSON string
    tool_output = json.dumps({"stdout": inner, "files": [{"uri": f"workspace://{FILE_B}#application/pdf"}]})
    assert referenced_file_ids([tool_output]) == {FILE_A, FILE_B}
    escaped = '{"ref": "workspace:\\/\\/' + FILE_A + '"}'  # JSON may escape "/" as "\/"
    assert referenced_file_ids([escaped]) == {FILE_A}
    unicode_escaped = '{"ref": "\\u0077orkspace://' + FILE_B + '"}'
    assert referenced_file_ids([unicode_escaped]) == {FILE_B}
    tool_calls = [{"id": "c1", "name": "read_workspace_file", "arguments": json.dumps({"file": f"workspace://{FILE_A}"})}]
    assert referenced_file_ids([tool_calls]) == {FILE_A}
    assert referenced_file_ids([{f"workspace://{FILE_B}": 1}]) == {FILE_B}


def test_near_misses_are_not_references():
    assert referenced_file_ids([f"workspace://{FILE_A}ff"]) == set()  # part of a longer token
    assert referenced_file_ids([f"workspace://{FILE_A.upper()}"]) == set()
    assert referenced_file_ids([f"workspace://{FILE_A[:-1]}"]) == set()
    assert referenced_file_ids([f"workspace:/{FILE_A}", FILE_A, f"file://{FILE_A}"]) == set()
    assert referenced_file_ids([None, 3, True, "", "{not json"]) == set()


def test_a_deeply_nested_value_costs_a_bounded_walk():
    value: object = f"workspace://{FILE_A}"
    for _ in range(500):
        value = [value]
    assert referenced_file_ids([value]) == set()  # past MAX_DEPTH: not walked, and no RecursionError


def test_the_mime_type_comes_from_the_bytes_then_the_name():
    assert detect_mime_type("chart.txt", PNG) == "image/png"
    assert detect_mime_type("photo.png", b"just text") == "text/plain"
    assert detect_mime_type("photo.png", PNG) == "image/png"
    assert detect_mime_type("scan", b"%PDF-1.7\n...") == "application/pdf"
    assert detect_mime_type("pic.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 8) == "image/jpeg"
    assert detect_mime_type("notes.md", b"# Notes") == "text/markdown"
    assert detect_mime_type("data.json", b'{"a": 1}') == "application/json"
    assert detect_mime_type("script.py", b"print(6*7)") == "text/x-python"
    assert detect_mime_type("page.html", b"<html></html>") == "text/html"
    assert detect_mime_type("notes.txt", "naïve".encode()) == "text/plain"
    assert detect_mime_type("blob", bytes(range(256))) == "application/octet-stream"
    assert detect_mime_type("notes.txt", bytes(range(256))) == "application/octet-stream"
    assert detect_mime_type("report.docx", b"PK\x03\x04rest").endswith("wordprocessingml.document")
    assert detect_mime_type("archive", b"PK\x03\x04rest") == "application/zip"
    assert detect_mime_type("empty.txt", b"") == "text/plain"
