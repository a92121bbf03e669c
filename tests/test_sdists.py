"""The sdist fixture makes real, reproducible sdists that pip builds into working wheels."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest
from packaging.tags import Tag
from packaging.utils import parse_wheel_filename
from packaging.version import Version

from tests.fixtures.sdists import FIXED_MTIME, make_sdist, module_name

PIP_TIMEOUT = 300  # seconds; a build takes about 3 s here


def _can_build_without_isolation() -> bool:
    """Whether this interpreter alone can build setuptools wheels (no build isolation).

    setuptools 61+ reads ``[project]``; before 70.1 its ``bdist_wheel`` lives in ``wheel``.
    """
    try:
        setuptools = Version(importlib.metadata.version("setuptools"))
    except importlib.metadata.PackageNotFoundError:
        return False
    if setuptools < Version("61"):
        return False
    return setuptools >= Version("70.1") or importlib.util.find_spec("wheel") is not None


def _pip_wheel(sdist: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """``pip wheel`` the sdist into ``out``: offline when this venv can build on its own,
    else in an isolated build environment fetched from pip's configured indexes."""
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir"]
    if _can_build_without_isolation():
        command += ["--no-build-isolation", "--no-index"]
    command += ["-w", str(out), str(sdist)]
    return subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False)


def _build(sdist: Path, out: Path) -> Path:
    result = _pip_wheel(sdist, out)
    assert result.returncode == 0, f"pip wheel failed:\n{result.stdout}\n{result.stderr}"
    wheels = list(out.glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _require_c_toolchain() -> None:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.fail("no C compiler (cc/gcc) on PATH: apt-get install build-essential")
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not headers.is_file():
        pytest.fail(f"{headers} is missing: install the Python development headers")


def _run(python: Path, code: str) -> str:
    result = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment (with its own pip); returns its python."""
    root = tmp_path_factory.mktemp("venv")
    venv.create(root, with_pip=True)
    return root / "bin" / "python"


def _install(python: Path, wheel: Path) -> None:
    pip = python.parent / "pip"
    result = subprocess.run(
        [str(pip), "install", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


def test_module_name() -> None:
    assert module_name("Foo.Bar-baz_Qux") == "foo_bar_baz_qux"


def test_same_inputs_give_the_same_bytes(tmp_path: Path) -> None:
    def make(directory: Path, version: str) -> Path:
        return make_sdist(
            directory,
            "Demo.Thing",
            version,
            kind="c",
            requires_python=">=3.9",
            requires=["packaging>=20", "click"],
            build_sleep=0.5,
            link_library="z",
        )

    first = make(tmp_path / "a", "1.2.3")
    second = make(tmp_path / "b", "1.2.3")
    assert first.name == second.name == "demo_thing-1.2.3.tar.gz"
    assert (
        hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    )
    assert make(tmp_path / "c", "1.2.4").read_bytes() != first.read_bytes()

    with tarfile.open(first) as tar:
        members = tar.getmembers()
        names = {member.name for member in members}
        assert {name.split("/")[0] for name in names} == {"demo_thing-1.2.3"}
        assert {member.mtime for member in members} == {FIXED_MTIME}
        stem = "demo_thing-1.2.3"
        assert {
            f"{stem}/PKG-INFO",
            f"{stem}/pyproject.toml",
            f"{stem}/setup.py",
            f"{stem}/src/demo_thing/__init__.py",
            f"{stem}/src/demo_thing/_speedups.c",
        } <= names

        def read(name: str) -> str:
            extracted = tar.extractfile(f"{stem}/{name}")
            assert extracted is not None
            return extracted.read().decode()

        assert read("PKG-INFO").splitlines()[:4] == [
            "Metadata-Version: 2.1",
            "Name: Demo.Thing",
            "Version: 1.2.3",
            "Requires-Python: >=3.9",
        ]
        setup_py = read("setup.py")
        assert "time.sleep(0.5)" in setup_py
        assert "libraries=['z']" in setup_py
        assert "zlibVersion()" in read("src/demo_thing/_speedups.c")


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind"):
        make_sdist(tmp_path, "x", "1.0", kind="rust")
    with pytest.raises(ValueError, match="link_library needs kind='c'"):
        make_sdist(tmp_path, "x", "1.0", link_library="z")
    with pytest.raises(ValueError, match="link_library must be one of"):
        make_sdist(tmp_path, "x", "1.0", kind="c", link_library="nosuchlib")
    with pytest.raises(ValueError, match="not normalised"):
        make_sdist(tmp_path, "x", "1.0-1")
    assert not list(tmp_path.iterdir())


def test_pure_sdist_builds_a_universal_wheel(tmp_path: Path, fresh_venv: Path) -> None:
    sdist = make_sdist(
        tmp_path, "Demo.Pure", "1.0", requires_python=">=3.8", requires=["packaging>=20"]
    )
    wheel = _build(sdist, tmp_path / "out")

    name, version, _, tags = parse_wheel_filename(wheel.name)
    assert (name, str(version)) == ("demo-pure", "1.0")
    assert tags == frozenset({Tag("py3", "none", "any")})
    with zipfile.ZipFile(wheel) as archive:
        # setuptools before 69.3 keeps the name's spelling in the dist-info folder
        (metadata_name,) = (n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(metadata_name).decode()
    assert "Requires-Python: >=3.8" in metadata
    assert "Requires-Dist: packaging>=20" in metadata

    _install(fresh_venv, wheel)
    assert _run(fresh_venv, "import demo_pure; print(demo_pure.VALUE)") == "Demo.Pure 1.0"


def test_c_sdist_builds_a_platform_wheel(tmp_path: Path, fresh_venv: Path) -> None:
    _require_c_toolchain()
    sdist = make_sdist(tmp_path, "demo-c", "2.0", kind="c")
    wheel = _build(sdist, tmp_path / "out")

    _, _, _, tags = parse_wheel_filename(wheel.name)
    interpreter = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert {tag.interpreter for tag in tags} == {interpreter}
    assert all(tag.abi != "none" and tag.platform != "any" for tag in tags), tags

    _install(fresh_venv, wheel)
    out = _run(fresh_venv, "import demo_c, demo_c._speedups as s; print(demo_c.VALUE, s.answer())")
    assert out == "demo-c 2.0 42"


def test_fail_build_fails_the_build(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path, "demo-fail", "1.0", fail_build=True)
    result = _pip_wheel(sdist, tmp_path / "out")
    assert result.returncode != 0
    assert "deliberate build failure" in result.stdout + result.stderr
    assert not list((tmp_path / "out").glob("*.whl"))


def _needed(shared_object: Path) -> list[str]:
    """The NEEDED entries of an ELF file, read with readelf or objdump."""
    if shutil.which("readelf"):
        output = subprocess.run(
            ["readelf", "-d", str(shared_object)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        # " 0x0000000000000001 (NEEDED)             Shared library: [libz.so.1]"
        return [
            line.rpartition("[")[2].rstrip("]").strip()
            for line in output.splitlines()
            if "(NEEDED)" in line
        ]
    if shutil.which("objdump"):
        output = subprocess.run(
            ["objdump", "-p", str(shared_object)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        # "  NEEDED               libz.so.1"
        return [
            line.split()[1]
            for line in output.splitlines()
            if line.split()[:1] == ["NEEDED"] and len(line.split()) == 2
        ]
    pytest.fail("neither readelf nor objdump is on PATH: apt-get install binutils")


def test_link_library_adds_a_needed_entry(tmp_path: Path, fresh_venv: Path) -> None:
    _require_c_toolchain()
    if not Path("/usr/include/zlib.h").is_file():
        pytest.fail("/usr/include/zlib.h is missing: apt-get install zlib1g-dev is needed")
    sdist = make_sdist(tmp_path, "demo-zlib", "3.0", kind="c", link_library="z")
    wheel = _build(sdist, tmp_path / "out")

    with zipfile.ZipFile(wheel) as archive:
        (extension,) = (
            n
            for n in archive.namelist()
            if n.startswith("demo_zlib/_speedups") and n.endswith(".so")
        )
        archive.extract(extension, tmp_path / "unpacked")
    assert "libz.so.1" in _needed(tmp_path / "unpacked" / extension)

    _install(fresh_venv, wheel)
    version = _run(fresh_venv, "import demo_zlib._speedups as s; print(s.library_version())")
    assert version[:1].isdigit(), version
