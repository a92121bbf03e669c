"""The builder side stays lean: a builder machine needs no database layer and no master code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

#: What the builder side may import from wheelfarm (besides its own package).
ALLOWED = (
    "wheelfarm.builder",
    "wheelfarm.protocol",
    "wheelfarm.names",
    "wheelfarm.targets",
    "wheelfarm.http",
    "wheelfarm.errors",
    "wheelfarm.words",
    "wheelfarm.log_markers",
)


def _imported_after(statement: str) -> list[str]:
    """The modules loaded in a fresh interpreter after running ``statement``."""
    code = f"{statement}; import sys; print('\\n'.join(sorted(sys.modules)))"
    environment = {**os.environ, "PYTHONPATH": str(SRC)}
    listing = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
    ).stdout
    return listing.split()


def test_builder_modules_import_no_sqlalchemy() -> None:
    code = (
        "import wheelfarm.builder.loop, wheelfarm.builder.sandbox, wheelfarm.builder.sysdeps, "
        "wheelfarm.builder.client, sys; "
        "assert not any(m == 'sqlalchemy' or m.startswith('sqlalchemy.') for m in sys.modules)"
    )
    environment = {**os.environ, "PYTHONPATH": str(SRC)}
    completed = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr


@pytest.mark.parametrize(
    "module",
    [
        "wheelfarm.builder",
        "wheelfarm.builder.client",
        "wheelfarm.builder.health",
        "wheelfarm.builder.loop",
        "wheelfarm.builder.sandbox",
        "wheelfarm.builder.isolation",
        "wheelfarm.builder.build_log",
        "wheelfarm.builder.sysdeps",
        "wheelfarm.builder.libraries",
    ],
)
def test_each_builder_module_imports_only_the_shared_modules(module: str) -> None:
    loaded = _imported_after(f"import {module}")
    ours = [m for m in loaded if m.startswith("wheelfarm.")]
    assert [m for m in ours if not m.startswith(ALLOWED)] == []
    assert [m for m in loaded if m.split(".")[0] in ("sqlalchemy", "fastapi", "jinja2")] == []


def test_http_helpers_pull_in_nothing_heavy() -> None:
    loaded = _imported_after("import wheelfarm.http")
    assert [m for m in loaded if m.startswith("wheelfarm.")] == [
        "wheelfarm.errors",
        "wheelfarm.http",
        "wheelfarm.words",
    ]
    heavy = ("sqlalchemy", "fastapi", "pydantic", "jinja2", "elftools", "psutil")
    assert [m for m in loaded if m.split(".")[0] in heavy] == []
