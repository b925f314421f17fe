"""The layers point one way. Every import in the product, including those inside functions and
`imports_passed_through` blocks, is checked against these rules; the README's "Layers" section
says the same in words."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ["api", "workflows", "activities", "models", "conversation", "billing", "stream_relay", "workspace",
           "tools", "limits", "sandbox", "operations", "platform_linking", "bot_adapter", "agent_graphs", "observability"]
PRODUCT_MODULES = ["settings", "worker", "database"]
DOMAIN = ["conversation", "billing", "stream_relay", "workspace", "tools",
          "limits", "sandbox", "operations", "platform_linking", "agent_graphs", "observability"]
# Workflow definitions (deterministic code): what they may import from the project.
WORKFLOW_DEFINITIONS = ["workflows.copilot_turn", "workflows.subscription"]
WORKFLOW_MAY_USE = ["models", "activities.interfaces", "workflows.search_attributes", "billing.tiers"]

# (importer prefix, forbidden prefixes)
FORBIDDEN = [
    ("api", ["activities", "local"]),
    ("tools", ["workflows", "api", "activities"]),
    ("models", ["api", "workflows", "activities", "tools", "conversation", "billing", "stream_relay", "workspace",
                "limits", "sandbox", "database", "worker", "agent_graphs"]),
    *[(domain, ["api", "workflows", "activities", "worker"]) for domain in DOMAIN],
    # The reference bot adapter is a client of the bot API: it reaches the product over HTTP only.
    ("bot_adapter", [p for p in PRODUCT + PRODUCT_MODULES if p not in ("models", "bot_adapter")]),
    *[(package, ["local", "tests", "bench"]) for package in PRODUCT + PRODUCT_MODULES],
]
PROJECT = set(PRODUCT + PRODUCT_MODULES + ["local", "tests", "bench"])


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from models import keys` imports the module `models.keys`, not only the package.
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] in PROJECT)
    return found


def product_files() -> list[Path]:
    files = [path for package in PRODUCT for path in (ROOT / package).rglob("*.py")]
    return files + [ROOT / f"{name}.py" for name in PRODUCT_MODULES]


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


IMPORTS = {module_name(path): project_imports(path) for path in product_files()}


@pytest.mark.parametrize("importer", sorted(IMPORTS))
def test_imports_point_down(importer):
    broken = [f"{importer} imports {imported}" for imported in sorted(IMPORTS[importer])
              for prefix, forbidden in FORBIDDEN if within(importer, prefix)
              for bad in forbidden if within(imported, bad)]
    assert not broken, broken


@pytest.mark.parametrize("workflow", WORKFLOW_DEFINITIONS)
def test_workflow_definitions_use_models_and_activity_interfaces_only(workflow):
    modules = {name for name in IMPORTS[workflow] if is_module(name)}
    # `from models import keys` names the package `models` too: only the module counts.
    used = {name for name in modules if not any(other.startswith(name + ".") for other in modules)}
    outside = sorted(name for name in used if not any(within(name, allowed) for allowed in WORKFLOW_MAY_USE))
    assert not outside, f"{workflow} imports {outside}"


def test_the_rules_see_the_known_imports():
    """The checker itself reads imports, also those inside functions and `with` blocks."""
    assert "activities.interfaces" in IMPORTS["workflows.copilot_turn"]
    assert "workflows.turn_client" in IMPORTS["worker"]
    assert "billing.tiers" in IMPORTS["workflows.subscription"]
