"""The commands the home page and docs/index.md give, run for real: pip, uv, Poetry and PDM.

Each adds wheelfarm's index *beside* an upstream, as documented. The upstream here is an empty
index on loopback (a static server with no projects), so nothing reaches a public index and the
project can only come from ours. uv is a test dependency; Poetry and PDM are installed from the
package registry into virtual environments of their own, once per session.
"""

from __future__ import annotations

import functools
import http.server
import subprocess
import sys
import threading
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.publish.test_clients import UV, clean_env, fresh_venv, installed_version
from tests.publish.test_mirroring import NAME, SmallIndex, small_index

__all__ = ["small_index"]


def tool_bin(tmp_path_factory: pytest.TempPathFactory, tool: str, requirement: str) -> Path:
    """A venv with ``tool`` installed by pip from the registry; a failure fails the test."""
    environment = tmp_path_factory.mktemp(f"{tool}-tool") / "venv"
    venv.create(environment, with_pip=True)
    done = subprocess.run(
        [environment / "bin" / "python", "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", requirement],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"cannot install {tool}:\n{done.stderr}"
    return environment / "bin" / tool


@pytest.fixture(scope="session")
def poetry_tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tool_bin(tmp_path_factory, "poetry", "poetry")


@pytest.fixture(scope="session")
def pdm_tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The "locked" extra pins PDM's own dependencies: an unpinned hishel 2 breaks PDM 2.29.
    return tool_bin(tmp_path_factory, "pdm", "pdm[locked]")


@pytest.fixture
def empty_upstream(tmp_path: Path) -> Iterator[str]:
    """An index with no projects: the stand-in for the upstream beside ours."""
    web = tmp_path / "empty-upstream"
    (web / "simple").mkdir(parents=True)
    (web / "simple" / "index.html").write_text("<!DOCTYPE html><title>Simple index</title>\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(web))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    server.shutdown()
    server.server_close()


def run(command: list[str | Path], env: dict[str, str], cwd: Path | None = None) -> str:
    done = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_pip_with_the_index_beside_the_upstream(
    small_index: SmallIndex, empty_upstream: str, tmp_path: Path
) -> None:
    python = fresh_venv(tmp_path)
    run(
        [sys.executable, "-m", "pip", "--python", str(python), "install",
         "--index-url", empty_upstream, "--extra-index-url", f"{small_index.url}/simple/", NAME],
        clean_env(tmp_path),
    )  # fmt: skip
    assert installed_version(python, NAME) == "1.0"


def test_uv_with_unsafe_best_match(
    small_index: SmallIndex, empty_upstream: str, tmp_path: Path
) -> None:
    assert UV is not None, "uv is not installed (it comes with the test extras)"
    python = fresh_venv(tmp_path)
    run(
        [UV, "pip", "install", "--python", str(python), "--index-url", empty_upstream,
         "--extra-index-url", f"{small_index.url}/simple/", "--index-strategy",
         "unsafe-best-match", NAME],
        clean_env(tmp_path),
    )  # fmt: skip
    assert installed_version(python, NAME) == "1.0"


def test_uv_with_an_explicit_index_in_pyproject(
    small_index: SmallIndex, empty_upstream: str, tmp_path: Path
) -> None:
    assert UV is not None, "uv is not installed (it comes with the test extras)"
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        f'[project]\nname = "app"\nversion = "0"\nrequires-python = ">=3.11"\n'
        f'dependencies = ["{NAME}"]\n\n'
        f'[[tool.uv.index]]\nname = "upstream"\nurl = "{empty_upstream}"\ndefault = true\n\n'
        f'[[tool.uv.index]]\nname = "wheelfarm"\nurl = "{small_index.url}/simple/"\n'
        "explicit = true\n\n"
        f'[tool.uv.sources]\n{NAME} = {{ index = "wheelfarm" }}\n'
    )
    env = clean_env(tmp_path) | {"UV_PYTHON": sys.executable}
    run([UV, "sync", "--no-install-project"], env, cwd=project)
    assert installed_version(project / ".venv" / "bin" / "python", NAME) == "1.0"


def test_poetry_with_an_explicit_source(
    poetry_tool: Path, small_index: SmallIndex, tmp_path: Path
) -> None:
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0"\nrequires-python = ">=3.11"\n'
        "dependencies = []\n\n[tool.poetry]\npackage-mode = false\n"
    )
    env = clean_env(tmp_path) | {
        "POETRY_CACHE_DIR": str(tmp_path / "poetry-cache"),
        "POETRY_CONFIG_DIR": str(tmp_path / "poetry-config"),
        "POETRY_VIRTUALENVS_IN_PROJECT": "true",
        "POETRY_NO_INTERACTION": "1",
    }
    env.pop("VIRTUAL_ENV", None)  # else Poetry installs into the environment running the tests
    url = f"{small_index.url}/simple/"
    run([poetry_tool, "source", "add", "--priority=explicit", "wheelfarm", url], env, project)
    run([poetry_tool, "add", "--source", "wheelfarm", NAME], env, project)
    assert installed_version(project / ".venv" / "bin" / "python", NAME) == "1.0"


def test_pdm_with_a_source_in_pyproject(
    pdm_tool: Path, small_index: SmallIndex, empty_upstream: str, tmp_path: Path
) -> None:
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0"\nrequires-python = ">=3.11"\n'
        "dependencies = []\n\n[tool.pdm]\ndistribution = false\n\n"
        # The upstream stand-in replaces PDM's default source, so no public index is asked.
        f'[[tool.pdm.source]]\nname = "pypi"\nurl = "{empty_upstream}"\n\n'
        f'[[tool.pdm.source]]\nname = "wheelfarm"\nurl = "{small_index.url}/simple/"\n'
    )
    python = fresh_venv(tmp_path)  # PDM installs into the environment it is given
    env = clean_env(tmp_path) | {
        "PDM_CACHE_DIR": str(tmp_path / "pdm-cache"),
        "PDM_HOME": str(tmp_path / "pdm-home"),
        "PDM_CHECK_UPDATE": "false",
        "PDM_PYTHON": str(python),
        "PDM_NON_INTERACTIVE": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    run([pdm_tool, "add", NAME], env, project)
    assert installed_version(python, NAME) == "1.0"
