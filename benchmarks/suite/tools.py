"""The comparison tools: installed by the suite into throwaway places, never into the project.

Each Python tool gets its own virtual environment under the cache directory (outside the
repository; ``$WHEELFARM_BENCH_CACHE``, by default ``/var/tmp/wheelfarm-bench``), made once
and reused by later runs. pip installs from whatever index it is configured with. System tools
(wrk, nginx and its njs module) come from Debian's packages, installed with apt-get when
missing and run as root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.suite.measure import NotMeasured

__all__ = ["cache_dir", "debian_file", "debian_tool", "tool_venv"]


def cache_dir() -> Path:
    """Where the comparison tools live between runs."""
    path = Path(os.environ.get("WHEELFARM_BENCH_CACHE", "/var/tmp/wheelfarm-bench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def tool_venv(name: str, requirements: Sequence[str]) -> Path:
    """A virtual environment holding ``requirements``; returns its ``bin`` directory.

    A marker file records what was installed, so a changed list makes a new environment.
    """
    venv = cache_dir() / "venvs" / name
    marker = venv / "installed.txt"
    wanted = "\n".join(requirements) + "\n"
    if marker.is_file() and marker.read_text() == wanted:
        return venv / "bin"
    shutil.rmtree(venv, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
             *requirements],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )  # fmt: skip
    except subprocess.CalledProcessError as error:
        last = (error.stderr or "").strip().splitlines()[-1:] or ["no output"]
        raise NotMeasured(f"pip could not install {' '.join(requirements)}: {last[0]}") from error
    except subprocess.TimeoutExpired as error:
        raise NotMeasured(f"installing {' '.join(requirements)} took over 10 minutes") from error
    marker.write_text(wanted)
    return venv / "bin"


def _apt_install(package: str, missing: str) -> None:
    """Install Debian's ``package`` for ``missing``; say why not when this is not root."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise NotMeasured(f"{missing} is missing (apt-get install {package}, as root)")
    subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", package],
        check=False,
        capture_output=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def debian_tool(command: str, package: str) -> str:
    """The path of ``command``, installing Debian's ``package`` first if it is missing."""
    found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin")
    if found:
        return found
    _apt_install(package, command)
    found = shutil.which(command) or shutil.which(command, path="/usr/sbin:/sbin")
    if not found:
        raise NotMeasured(f"{command} is missing and apt-get install {package} did not add it")
    return found


def debian_file(path: Path, package: str) -> Path:
    """``path`` (a module, say), installing Debian's ``package`` first if it is missing."""
    if path.exists():
        return path
    _apt_install(package, str(path))
    if not path.exists():
        raise NotMeasured(f"{path} is missing and apt-get install {package} did not add it")
    return path
