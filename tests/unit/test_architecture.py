"""House rules that keep the core pure and the layers pointing down (STYLE.md)."""

from __future__ import annotations

import ast
import importlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STDLIB = set(sys.stdlib_module_names)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def offending(folder: str, allowed_roots: set[str]) -> dict[str, set[str]]:
    problems: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        bad = {m for m in imported_modules(path) if m.split(".")[0] not in STDLIB | allowed_roots}
        if bad:
            problems[str(path.relative_to(ROOT))] = bad
    return problems


def test_the_pure_core_imports_only_the_standard_library_and_schemas() -> None:
    assert offending("streams/core", {"schemas", "streams"}) == {}
    # ...and within streams, only the core itself
    for path in (ROOT / "streams/core").rglob("*.py"):
        for module in imported_modules(path):
            if module.startswith("streams"):
                assert module.startswith("streams.core"), f"{path.name} imports {module}"


def test_schemas_import_neither_streams_nor_services() -> None:
    assert offending("schemas", {"schemas", "pydantic"}) == {}


def test_streams_never_reach_up_into_services() -> None:
    for path in (ROOT / "streams").rglob("*.py"):
        assert not any(m.split(".")[0] == "services" for m in imported_modules(path)), path


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    # Given a module that imports a third-party package, the checker must notice it.
    module = tmp_path / "bad.py"
    module.write_text("import aiokafka\nfrom schemas.events import Event\nimport json\n")
    assert imported_modules(module) == {"aiokafka", "schemas.events", "json"}
    assert {m for m in imported_modules(module) if m.split(".")[0] not in STDLIB | {"schemas"}} == {"aiokafka"}


def test_every_function_the_design_index_names_exists_and_says_what_it_computes() -> None:
    # Given the index from the specification's terms to the code, in docs/design.md
    text = (ROOT / "docs/design.md").read_text()
    index = text.split("## The specification's terms in code", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in index.splitlines() if line.startswith("|")]
    names = re.findall(r"`([a-z_.]+):([A-Za-z_.]+)`", "\n".join(rows))
    assert len(names) >= 15
    for module_name, qualified in names:
        # Then each names something that exists, and each function there has a docstring
        module = importlib.import_module(module_name if "." in module_name else f"streams.core.{module_name}")
        target: object = module
        for part in qualified.split("."):
            target = getattr(target, part)
        if callable(target) or isinstance(target, property):
            assert (target.__doc__ or "").strip(), f"{module_name}:{qualified} has no docstring"


def test_the_doors_meet_only_in_the_application_service() -> None:
    # The dashboard calls no function of the API, and the application service knows neither door.
    assert {m for path in (ROOT / "services/dashboard").rglob("*.py") for m in imported_modules(path)} & _modules_under(
        "services.api"
    ) == set()
    for path in (ROOT / "services/application").rglob("*.py"):
        for module in imported_modules(path):
            assert not module.startswith(("services.api", "services.dashboard")), f"{path.name} imports {module}"


def _modules_under(package: str) -> set[str]:
    folder = ROOT / package.replace(".", "/")
    return {package} | {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in folder.rglob("*.py")
    }
