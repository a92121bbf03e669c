"""Shared fixtures: every storage test runs on SQLite and on a throwaway PostgreSQL cluster.

And the ``slow`` marker, put on tests by what they use, never by a list of their names: see
:func:`pytest_collection_modifyitems`. ``make test-fast`` runs ``pytest -m "not slow"``.
"""

from __future__ import annotations

import ast
import functools
import itertools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.pg_cluster import PostgresUnavailable, ThrowawayCluster
from wheelfarm.store.database import create_store_engine, open_store, upgrade

TEMPLATE = "wheelfarm_template"

TESTS = Path(__file__).resolve().parent

#: Fixtures that start something costly: a test using one (directly or through other fixtures,
#: or by a parameter naming it, as ``base_url`` names ``nginx``) is slow.
SLOW_FIXTURES = {
    "pg_cluster": "a PostgreSQL cluster",
    "nginx": "an nginx server",
    "browser": "Chromium, driven by Playwright",
    "published": "a real index: real builds, written and served",
    "farm": "the builder API with builders that build for real",
    "backend_wheels": "real pip builds in the sandbox",
    "fresh_venv": "a new virtual environment with its own pip",
    "mirror_tools": "bandersnatch and pypi-simple installed into a venv from the registry",
    "small_index": "a small index published and served, to change and publish again",
    "poetry_tool": "Poetry installed into a venv from the registry",
    "pdm_tool": "PDM installed into a venv from the registry",
}
#: Markers that mean the same: ``postgres`` needs the cluster.
SLOW_MARKERS = {"postgres"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """With ``WHEELFARM_NO_SKIPS=1`` (set by CI) a skipped test fails, with its reason.

    Every test can run on a machine set up by ``.ci/run``: a skip there means something the
    suite needs is missing, and a run that passes by skipping would prove nothing."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and os.environ.get("WHEELFARM_NO_SKIPS") == "1":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, and WHEELFARM_NO_SKIPS=1 allows no skip: {reason}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` the tests that start servers, clusters, browsers, builds or processes.

    A test is slow when it uses a fixture of :data:`SLOW_FIXTURES` (or a parameter names one),
    carries a marker of :data:`SLOW_MARKERS`, or runs wheelfarm's own code in a child process
    (``python -m wheelfarm ...``: the command line end to end), itself or through the helpers
    and fixtures it calls (:func:`spawners`).
    """
    spawning = spawners()
    for item in items:
        if any(item.iter_markers("slow")):
            continue
        if slow_reason(item, spawning):
            item.add_marker(pytest.mark.slow)


def slow_reason(item: pytest.Item, spawning: frozenset[tuple[str, str]]) -> str | None:
    fixtures = set(getattr(item, "fixturenames", ()))
    callspec = getattr(item, "callspec", None)
    params = callspec.params.values() if callspec else ()
    for name in sorted(fixtures | {p for p in params if isinstance(p, str)}):
        if name in SLOW_FIXTURES:
            return SLOW_FIXTURES[name]
    for marker in SLOW_MARKERS:
        if any(item.iter_markers(marker)):
            return f"marked {marker}"
    functions = [getattr(item, "function", None)]
    info = getattr(item, "_fixtureinfo", None)
    if info is not None:
        functions += [d.func for defs in info.name2fixturedefs.values() for d in defs]
    for function in functions:
        key = (getattr(function, "__module__", ""), getattr(function, "__name__", ""))
        if key in spawning:
            return "runs wheelfarm in a child process"
    return None


@functools.cache
def spawners() -> frozenset[tuple[str, str]]:
    """(module, function) of the test-tree functions that run our code in a child process.

    Found in the source: a function holding a literal ``"-m", "wheelfarm..."`` (or
    ``"-m", "tests..."``), and every module-level function that calls one, across imports.
    """
    functions: dict[tuple[str, str], ast.FunctionDef | ast.AsyncFunctionDef] = {}
    imported: dict[tuple[str, str], tuple[str, str]] = {}
    for path in TESTS.rglob("*.py"):
        module = ".".join(path.relative_to(TESTS.parent).with_suffix("").parts)
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions[(module, node.name)] = node
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    imported[(module, alias.asname or alias.name)] = (node.module, alias.name)

    def callees(key: tuple[str, str]) -> set[tuple[str, str]]:
        found = set()
        for node in ast.walk(functions[key]):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                local = (key[0], node.func.id)
                found.add(local if local in functions else imported.get(local, local))
        return found & functions.keys()

    def runs_our_code(node: ast.AST) -> bool:
        for sequence in ast.walk(node):
            if isinstance(sequence, ast.List | ast.Tuple):
                words = [e.value if isinstance(e, ast.Constant) else None for e in sequence.elts]
                for flag, target in itertools.pairwise(words):
                    if flag == "-m" and str(target).split(".")[0] in {"wheelfarm", "tests"}:
                        return True
        return False

    found = {key for key, node in functions.items() if runs_our_code(node)}
    calls = {key: callees(key) for key in functions}
    while True:
        more = {key for key, called in calls.items() if key not in found and called & found}
        if not more:
            return frozenset(found)
        found |= more


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[ThrowawayCluster]:
    """One PostgreSQL cluster per test session, with a migrated template database.

    Without server binaries the PostgreSQL half of the suite is skipped, with the reason;
    ``WHEELFARM_REQUIRE_POSTGRES=1`` (set by CI) turns that skip into a failure.
    """
    cluster = ThrowawayCluster()
    try:
        cluster.start()
    except PostgresUnavailable as error:
        if os.environ.get("WHEELFARM_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required (WHEELFARM_REQUIRE_POSTGRES=1): {error}")
        pytest.skip(f"no PostgreSQL server installed: {error}")
    template_url = cluster.create_database(TEMPLATE)
    engine = create_store_engine(template_url)
    upgrade(engine)
    engine.dispose()
    yield cluster
    cluster.stop()


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty-of-data database URL on each engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'wheelfarm.sqlite'}"
        return
    cluster: ThrowawayCluster = request.getfixturevalue("pg_cluster")
    name = f"wf_{uuid.uuid4().hex[:12]}"
    url = cluster.create_database(name, template=TEMPLATE)
    yield url
    cluster.drop_database(name)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An open store (schema at head) on each engine."""
    store = open_store(database_url)
    yield store
    store.dispose()
