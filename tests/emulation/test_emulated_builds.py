"""Real builds for aarch64 and armv7l on this machine, in roots run under qemu emulation."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.emulation.conftest import RootFarm, run_in_root
from tests.fixtures.sdists import make_sdist, make_zlib_sdist, module_name
from wheelfarm.builder.chroot import mounts_under
from wheelfarm.builder.emulated import prepare_root
from wheelfarm.builder.loop import BuilderOptions, run_builder
from wheelfarm.builder.sandbox import BuildLimits, BuildRequest, Outcome, cleanup, run_build
from wheelfarm.farm.dependencies import load_distro, set_target_distro, wheel_dependencies
from wheelfarm.farm.distros import read_package_list
from wheelfarm.store.schema import build_files, builders, file_dependencies, jobs

pytestmark = pytest.mark.slow

#: What each root's wheels are tagged, by the name its fixture parameter carries.
PLATFORM = {"bookworm-arm64": "linux_aarch64", "bookworm-armhf": "linux_armv7l"}
PIP_OPTIONS = ("--no-build-isolation",)  # the fake index serves no setuptools


def test_an_extension_linking_zlib_and_libmemcached_is_built_for_the_roots_platform(
    root: Path, root_farm: RootFarm, tmp_path: Path
) -> None:
    """Built, analysed against the root, net of Debian 12's base list: apt libmemcached11."""
    platform = PLATFORM[root.name]
    assert root_farm.target.platform == platform  # the root's interpreter says so, not uname
    sdist = make_zlib_sdist(tmp_path / "sdists", "demo-zlib", "1.0", memcached=True)
    root_farm.publish(sdist, "demo-zlib", "1.0")
    options = BuilderOptions(workdir=tmp_path / "work", pip_options=PIP_OPTIONS, rootfs=root)
    assert run_builder(root_farm.client(), options, threading.Event(), jobs=1) == 1

    with root_farm.engine.connect() as connection:
        state = connection.execute(select(jobs.c.state)).scalar_one()
        filename = connection.execute(select(build_files.c.filename)).scalar_one()
        needs = set(connection.execute(select(file_dependencies.c.tool, file_dependencies.c.name)))
        hello = connection.execute(select(builders.c.target, builders.c.os)).one()
    assert state == "built"
    assert filename.endswith(f"-cp311-cp311-{platform}.whl")
    # resolved against the root's loader cache and dpkg
    assert {("apt", "zlib1g"), ("apt", "libmemcached11")} <= needs
    assert hello.target == root_farm.target.name and "emulated" in hello.os
    with root_farm.engine.begin() as connection:  # what the project page's apt line says
        _name, packages, source = read_package_list("debian-bookworm-base")
        load_distro(connection, "debian-bookworm-base", packages, source)
        set_target_distro(connection, root_farm.target.name, "debian-bookworm-base")
        users_need = wheel_dependencies(connection, [filename])[filename]
    assert users_need.apt == ("libmemcached11",) and users_need.unresolved == ()

    # pip of the root's venv installs the stored wheel (from the file, no index) into a
    # scratch directory, and the root's interpreter imports it and calls zlib through it.
    scratch = tmp_path / "scratch"
    (scratch / "wheels").mkdir(parents=True)
    (scratch / "wheels" / filename).write_bytes(
        (root_farm.wheels / "demo-zlib" / filename).read_bytes()
    )
    module = module_name("demo-zlib")
    code = (
        "import subprocess, sys, zlib\n"
        "subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-index', '--no-deps',"
        " '--disable-pip-version-check', '--target', '/build/site',"
        f" '/build/wheels/{filename}'], check=True, capture_output=True)\n"
        "sys.path.insert(0, '/build/site')\n"
        f"from {module} import _zcompress\n"
        "data = b'emulated ' * 100\n"
        "packed = _zcompress.compress(data)\n"
        "assert zlib.decompress(packed) == data and len(packed) < len(data)\n"
        "assert _zcompress.memcached_version().startswith('1.')\n"
        "import sysconfig; print(sysconfig.get_platform(), _zcompress.__file__)\n"
    )
    ran = run_in_root(root, scratch, code)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split()[0] == platform.replace("_", "-", 1)
    assert "/build/site/" in ran.stdout


def test_the_build_sees_only_the_read_only_root_and_its_own_directory(
    root: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "builder-secret"
    secret.write_text("token")
    build = tmp_path / "build"
    build.mkdir()
    code = (
        "import os\n"
        "assert os.getuid() == 65534 and os.getgid() == 65534\n"
        f"assert not os.path.exists({str(secret)!r})\n"
        "for path in ('/etc/wheelfarm-was-here', '/opt/wheelfarm/venv/x', '/x'):\n"
        "    try:\n"
        "        open(path, 'w')\n"
        "    except OSError as error:\n"
        "        assert error.errno in (13, 30), error\n"
        "    else:\n"
        "        raise SystemExit(f'wrote {path}')\n"
        "open('/build/made-inside', 'w').write('ok')\n"
        "pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
        "assert len(pids) < 10, pids  # its own PID namespace: not the builder's processes\n"
        "print(sorted(os.listdir('/dev')))\n"
    )
    ran = run_in_root(root, build, code)
    assert ran.returncode == 0, ran.stderr
    assert (build / "made-inside").read_text() == "ok"
    assert "sda" not in ran.stdout and "vda" not in ran.stdout
    assert not (root / "etc/wheelfarm-was-here").exists()
    assert mounts_under(root) == []  # the mounts lived in the build's namespace only


def test_a_timed_out_build_is_killed_whole_and_leaves_no_mount(
    root: Path, root_farm: RootFarm, tmp_path: Path
) -> None:
    sdist = make_sdist(tmp_path / "sdists", "demo-slow", "1.0", build_sleep=120)
    root_farm.upstream.create("demo-slow")
    root_farm.upstream.add_file("demo-slow", "1.0", sdist.name, content=sdist.read_bytes())
    isolation = prepare_root(root).isolation
    request = BuildRequest(
        "demo-slow", "1.0", root_farm.upstream.simple_url, PIP_OPTIONS, python=isolation.python
    )
    began = time.monotonic()
    result = run_build(request, tmp_path, BuildLimits(timeout=8), isolation=isolation)
    try:
        assert result.outcome is Outcome.TIMEOUT
        assert time.monotonic() - began < 30
        assert result.sandboxed
        assert mounts_under(root) == []
        assert not _processes_mentioning(str(result.directory))
    finally:
        cleanup(result)


def test_the_builder_reports_the_roots_interpreter(root: Path, tmp_path: Path) -> None:
    prepared = prepare_root(root)
    assert prepared.target.platform == PLATFORM[root.name]
    assert prepared.target.platform in prepared.target.platforms
    assert prepared.python_version.startswith("3.")
    # the log header's pip version: the root's own pip, asked inside the root
    said = run_in_root(root, tmp_path, "import pip; print(pip.__version__)")
    assert prepared.pip_version == said.stdout.strip() != "unknown", said.stderr


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found
