"""The exception tree is listed in one place: every error class under src/ is named in errors.py."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import wheelfarm
from wheelfarm import errors

SRC = Path(wheelfarm.__file__).parent


def _defined_errors() -> dict[str, str]:
    """Every exception class defined in wheelfarm's modules: qualified name -> module."""
    found: dict[str, str] = {}
    for module_info in pkgutil.walk_packages([str(SRC)], prefix="wheelfarm."):
        if ".migrations" in module_info.name or module_info.name.endswith("__main__"):
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module_info.name
                and not name.startswith("_")
            ):
                found[name] = module_info.name
    return found


def _listed() -> dict[str, str]:
    """The classes in errors.py's tree listing (its docstring) and its own: name -> module."""
    doc = errors.__doc__ or ""
    listed = dict(re.findall(r"`([A-Z][A-Za-z]+)` \(([\w.]+)\)", doc))
    tree = ast.parse(Path(errors.__file__).read_text())
    listed |= {n.name: errors.__name__ for n in tree.body if isinstance(n, ast.ClassDef)}
    return listed


def test_every_error_class_is_listed_in_the_tree() -> None:
    defined, listed = _defined_errors(), _listed()
    missing = {name: module for name, module in defined.items() if listed.get(name) != module}
    assert not missing, f"list these in errors.py's docstring, with their modules: {missing}"


def test_the_listing_names_only_classes_that_exist() -> None:
    defined = _defined_errors()
    stale = set(_listed()) - set(defined)
    assert not stale, f"errors.py lists classes that no module defines: {sorted(stale)}"


def test_every_listed_error_derives_from_the_base_or_says_why() -> None:
    """Errors derive from WheelfarmError; a ValueError kind (parse problems) must say why."""
    for name, module in _defined_errors().items():
        cls = getattr(importlib.import_module(module), name)
        if not issubclass(cls, errors.WheelfarmError):
            assert "not a WheelfarmError" in (cls.__doc__ or ""), (
                f"{module}.{name} is outside the tree; its docstring should say why"
            )
