"""Real installers against the published index: pip and uv, each in a fresh environment with
wheelfarm's index as their only index."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.publish.published import Published
from wheelfarm.web.index_app import ACCESS_LOGGER

UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")


def clean_env(tmp_path: Path) -> dict[str, str]:
    """No pip or uv configuration from this machine: the index given is the only one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_CACHE_DIR="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        UV_NO_CONFIG="1",
        UV_CACHE_DIR=str(tmp_path / "uv-cache"),
        UV_PYTHON_DOWNLOADS="never",
    )
    return env


def fresh_venv(tmp_path: Path) -> Path:
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=False)
    return environment / "bin" / "python"


def installed_version(python: Path, project: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({project!r}))"
    return subprocess.run(
        [str(python), "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()


def install(
    command: Callable[[Path], list[str]], published: Published, tmp_path: Path, *requirement: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Install into a fresh environment, with only our index; ``command`` names its Python."""
    python = fresh_venv(tmp_path)
    done = subprocess.run(
        [*command(python), "--index-url", f"{published.url}/simple/", *requirement],
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done, python


def pip_install(
    published: Published, tmp_path: Path, *requirement: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    def pip(python: Path) -> list[str]:
        return [sys.executable, "-m", "pip", "--python", str(python), "install"]  # --python first

    return install(pip, published, tmp_path, *requirement)


def uv_install(
    published: Published, tmp_path: Path, *requirement: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    if UV is None:
        pytest.fail("uv is not installed (it comes with the test extras)")
    uv = UV

    def uv_pip(python: Path) -> list[str]:
        return [uv, "pip", "install", "--python", str(python)]

    return install(uv_pip, published, tmp_path, *requirement)


INSTALLERS = {"pip": pip_install, "uv": uv_install}
PRE = {"pip": ("--pre",), "uv": ("--prerelease", "allow")}


@pytest.mark.parametrize("installer", INSTALLERS)
def test_unpinned_install_skips_yanked_future_python_and_pre_releases(
    published: Published, tmp_path: Path, installer: str
) -> None:
    done, python = INSTALLERS[installer](published, tmp_path, "demo-client")
    assert done.returncode == 0, done.stderr
    # 2.0rc1 is a pre-release, 1.2 wants Python >= 3.99, 1.1 is yanked: 1.0 is the one.
    assert installed_version(python, "demo-client") == "1.0"


@pytest.mark.parametrize("installer", INSTALLERS)
def test_an_exact_pin_installs_a_yanked_release(
    published: Published, tmp_path: Path, installer: str
) -> None:
    done, python = INSTALLERS[installer](published, tmp_path, "demo-client==1.1")
    assert done.returncode == 0, done.stderr
    assert installed_version(python, "demo-client") == "1.1"


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_pre_release_only_on_request(
    published: Published, tmp_path: Path, installer: str
) -> None:
    done, python = INSTALLERS[installer](published, tmp_path, *PRE[installer], "demo-client")
    assert done.returncode == 0, done.stderr
    assert installed_version(python, "demo-client") == "2.0rc1"


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_release_excluding_this_python_is_not_chosen(
    published: Published, tmp_path: Path, installer: str
) -> None:
    done, _ = INSTALLERS[installer](published, tmp_path, "demo-client==1.2")
    assert done.returncode != 0
    assert "3.99" in done.stdout + done.stderr  # both name the Requires-Python that excludes it


@pytest.mark.parametrize("installer", INSTALLERS)
def test_a_c_extension_built_here_installs_and_imports(
    published: Published, tmp_path: Path, installer: str
) -> None:
    done, python = INSTALLERS[installer](published, tmp_path, "demo-ext")
    assert done.returncode == 0, done.stderr
    answer = subprocess.run(
        [str(python), "-c", "from demo_ext import _speedups; print(_speedups.answer())"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert answer.stdout.strip() == "42"


def test_pip_reads_the_core_metadata_file(
    published: Published, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    done, _ = pip_install(published, tmp_path, "demo-client")
    assert done.returncode == 0, done.stderr
    requested = [record.getMessage() for record in caplog.records]
    assert any(".whl.metadata 200" in line for line in requested), requested
    assert any("GET /simple/demo-client/ 200" in line for line in requested), requested
