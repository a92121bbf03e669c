"""The shape of the code: import rules between stages, size limits, and the architecture table.

Everything here is read from the tree and from pyproject.toml's ``[tool.importlinter]``, so the
checks keep working when modules move inside their packages (docs/development.md).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SLOW_FIXTURES, spawners

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "wheelfarm"
PYPROJECT = ROOT / "pyproject.toml"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# What the builder (which runs on builder machines) may import besides itself.
BUILDER_MAY_IMPORT = {
    "wheelfarm",
    "protocol",
    "names",
    "targets",
    "http",
    "errors",
    "words",
    "log_markers",
}

MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80


# --- import rules -----------------------------------------------------------------------------


def contracts() -> list[dict[str, Any]]:
    config = tomllib.loads(PYPROJECT.read_text())
    found: list[dict[str, Any]] = config["tool"]["importlinter"]["contracts"]
    return found


def contract(contract_id: str) -> dict[str, Any]:
    (found,) = [c for c in contracts() if c["id"] == contract_id]
    return found


def lint_imports(src: Path, config: Path, *contract_ids: str) -> subprocess.CompletedProcess[str]:
    """Run lint-imports on the ``wheelfarm`` package found in ``src``."""
    limit = [f"--contract={contract_id}" for contract_id in contract_ids]
    script = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    env = {**os.environ, "PYTHONPATH": str(src), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", script, "--no-cache", "--no-logo", *limit, str(config)],
        cwd=src.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def verdicts(output: str) -> dict[str, str]:
    """Contract name -> KEPT or BROKEN, from lint-imports' report."""
    flat = " ".join(output.split())
    return {
        c["name"]: verdict
        for c in contracts()
        for verdict in ("KEPT", "BROKEN")
        if f"{' '.join(c['name'].split())} {verdict}" in flat
    }


def top_level_names() -> set[str]:
    """The modules and packages directly under src/wheelfarm, without dunder modules."""
    names = {path.stem for path in PACKAGE.glob("*.py") if not path.stem.startswith("__")}
    return names | {path.name for path in subpackages()}


def subpackages() -> list[Path]:
    return sorted(path.parent for path in PACKAGE.glob("*/__init__.py"))


def test_the_tree_keeps_every_import_contract() -> None:
    result = lint_imports(SRC, PYPROJECT)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert verdicts(report) == {c["name"]: "KEPT" for c in contracts()}, report


def first_module(package: str) -> Path:
    """A module of ``package`` (dotted) in which to inject an import, in a copy of the tree."""
    directory = SRC.joinpath(*package.split("."))
    if not directory.is_dir():
        return directory.with_suffix(".py")
    return sorted(path for path in directory.glob("*.py") if path.name != "__init__.py")[0]


def violations() -> list[tuple[str, str, str]]:
    """(contract id, importer package, imported module): one import each contract forbids.

    Derived from the contracts themselves: a forbidden contract's first source imports its first
    forbidden module; a layers contract's lowest layer imports its highest.
    """
    found = []
    for c in contracts():
        if c["type"] == "forbidden":
            found.append((c["id"], c["source_modules"][0], c["forbidden_modules"][0]))
        elif c["type"] == "layers":
            top = re.split(r"[|:]", c["layers"][0])[0].strip()
            bottom = re.split(r"[|:]", c["layers"][-1])[0].strip()
            found.append((c["id"], bottom, top))
        else:
            raise AssertionError(f"no violation known for a {c['type']} contract: teach this test")
    return found


@pytest.mark.parametrize(("contract_id", "importer", "imported"), violations())
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, contract_id: str, importer: str, imported: str
) -> None:
    copy = tmp_path / "src"
    shutil.copytree(PACKAGE, copy / "wheelfarm", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PYPROJECT, tmp_path / "pyproject.toml")
    module = copy / first_module(importer).relative_to(SRC)
    module.write_text(module.read_text() + f"\nimport {imported}  # injected by the test\n")

    result = lint_imports(copy, tmp_path / "pyproject.toml", contract_id)

    report = result.stdout + result.stderr
    assert result.returncode == 1, report
    assert verdicts(report) == {contract(contract_id)["name"]: "BROKEN"}, report
    assert imported in report, report


def test_the_builder_contract_forbids_everything_but_the_shared_modules() -> None:
    forbidden = {
        name.removeprefix("wheelfarm.")
        for name in contract("builder")["forbidden_modules"]
        if name.startswith("wheelfarm.")
    }
    allowed = BUILDER_MAY_IMPORT | {"builder"}
    assert forbidden == top_level_names() - allowed
    assert "sqlalchemy" in contract("builder")["forbidden_modules"]


def test_the_store_contract_forbids_every_other_package_and_the_top() -> None:
    forbidden = set(contract("store")["forbidden_modules"])
    others = {f"wheelfarm.{path.name}" for path in subpackages() if path.name != "store"}
    assert forbidden == others | {"wheelfarm.app"}


def test_every_package_is_under_some_contract() -> None:
    named = " ".join(str(c) for c in contracts())
    missing = [p.name for p in subpackages() if not re.search(rf"wheelfarm\.{p.name}\b", named)]
    assert not missing, f"packages no import contract mentions: {missing}"


# --- size rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offender:
    where: str
    lines: int
    limit: int

    def __str__(self) -> str:
        return f"{self.where}: {self.lines} lines (limit {self.limit})"


def excused(docstring: str | None) -> bool:
    """A docstring excuses its module or function with a line starting with ``Long:``."""
    return any(line.strip().startswith("Long:") for line in (docstring or "").splitlines())


def size_offenders(source: str, where: str) -> list[Offender]:
    tree = ast.parse(source)
    found = []
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES and not excused(ast.get_docstring(tree)):
        found.append(Offender(where, lines, MAX_MODULE_LINES))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES and not excused(ast.get_docstring(node)):
                found.append(
                    Offender(f"{where}:{node.lineno} {node.name}()", length, MAX_FUNCTION_LINES)
                )
    return found


def test_no_module_or_function_is_too_long_without_a_reason() -> None:
    offenders = [
        offender
        for path in sorted(PACKAGE.rglob("*.py"))
        for offender in size_offenders(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert not offenders, "too long, and no 'Long:' line in the docstring says why:\n" + "\n".join(
        map(str, offenders)
    )


def test_the_size_rule_bites_and_long_excuses() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    too_long = f"def f():\n{body}"
    excused_one = f'def f():\n    """Long: a table of cases, clearer in one place."""\n{body}'
    just_right = "def f():\n" + "".join(body.splitlines(keepends=True)[1:])

    assert [o.where for o in size_offenders(too_long, "m.py")] == ["m.py:1 f()"]
    assert size_offenders(excused_one, "m.py") == []
    assert size_offenders(just_right, "m.py") == []
    big = "x = 1\n" * (MAX_MODULE_LINES + 1)
    assert [o.where for o in size_offenders(big, "m.py")] == ["m.py"]
    assert size_offenders('"""Big.\n\nLong: generated data.\n"""\n' + big, "m.py") == []


# --- the architecture table ---------------------------------------------------------------------


def table_rows() -> list[dict[str, str]]:
    """The rows of docs/architecture.md's table whose header starts with ``| stage | package``."""
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    for line in ARCHITECTURE.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|"):
            if rows:
                break
            header = None
        elif cells[:2] == ["stage", "package"]:
            header = cells
        elif header and not set(cells[0]) <= {"-", ":"}:
            rows.append(dict(zip(header, cells, strict=True)))
    return rows


def table_packages() -> set[str]:
    """Dotted package names in the package column, e.g. ``wheelfarm.store``."""
    return {
        name.rstrip("/").replace("/", ".")
        for row in table_rows()
        for name in re.findall(r"`([^`]+)`", row["package"])
    }


def test_the_architecture_table_names_every_package_and_only_packages() -> None:
    assert table_rows(), f"{ARCHITECTURE.name} has no '| stage | package | ...' table"
    in_src = {"wheelfarm"} | {f"wheelfarm.{path.name}" for path in subpackages()}
    named = table_packages()
    assert in_src - named == set(), "packages the table does not describe"
    assert named - in_src == set(), "the table names packages that do not exist"


def _package_modules(directory: Path, top: bool) -> set[str]:
    """The modules (and resource folders) a row must list: everything but dunder files."""
    names = set()
    for path in directory.iterdir():
        if path.name.startswith(("_", ".")) or path.name.endswith(".egg-info"):
            continue
        if path.suffix == ".py":
            names.add(path.name)
        elif path.is_dir() and not top and path.name != "__pycache__":
            names.add(f"{path.name}/")
    return names


def test_each_row_lists_exactly_its_package_modules_and_existing_tests() -> None:
    """The table is the map a newcomer reads: it names every module, and only modules that exist."""
    for row in table_rows():
        (package,) = re.findall(r"`([^`]+)`", row["package"])
        directory = SRC.joinpath(*package.split("."))
        listed = set(re.findall(r"`([^`]+)`", row["modules"]))
        actual = _package_modules(directory, top=package == "wheelfarm")
        assert listed == actual, (
            f"{package}: the table lacks {sorted(actual - listed)}, "
            f"names missing {sorted(listed - actual)}"
        )
        tests = [name for name in re.findall(r"`([^`]+)`", row["tests"]) if "/" in name]
        missing = [name for name in tests if not (ROOT / name.rstrip("/")).exists()]
        assert tests and not missing, (package, missing)


# --- the fast tier ------------------------------------------------------------------------------


def defined_fixtures() -> set[str]:
    """The names of the fixtures defined anywhere under tests/."""
    names = set()
    for path in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and any(
                "fixture" in ast.unparse(decorator) for decorator in node.decorator_list
            ):
                names.add(node.name)
    return names


def test_every_fixture_that_makes_a_test_slow_exists() -> None:
    """A renamed fixture would quietly move its tests into the fast tier."""
    assert set(SLOW_FIXTURES) - defined_fixtures() == set()


def test_tests_that_run_wheelfarm_in_a_child_process_are_found() -> None:
    assert any(module.startswith("tests.") for module, _ in spawners())
