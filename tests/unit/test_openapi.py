"""The published API: every route is in the README's table, and every JSON answer has a schema."""

import re
from pathlib import Path

from api.main import create_app

README = Path(__file__).resolve().parents[2] / "README.md"


def normalised(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_every_route_is_documented_in_the_readme(settings):
    schema = create_app(settings).openapi()
    served = {(method.upper(), normalised(path)) for path, operations in schema["paths"].items()
              for method in operations}
    documented = {(m, normalised(p)) for m, p in re.findall(r"^\| `(GET|POST|PUT|PATCH|DELETE) ([^`?]+)",
                                                             README.read_text(), flags=re.MULTILINE)}
    assert served == documented


def test_every_json_answer_has_a_schema(settings):
    schema = create_app(settings).openapi()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                content = response.get("content", {})
                if "application/json" in content and status.startswith("2") and not path.endswith("/stream"):
                    assert content["application/json"]["schema"], f"{method.upper()} {path} {status}"
