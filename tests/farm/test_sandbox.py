"""One build in its sandbox: real ``pip wheel`` runs against the fake index on loopback.

The release builds use real sdists served by :class:`FakeUpstream`. Where the point is what
``run_build`` does with a build's output, exit status and resources (the log cap, the
verdicts, the limits), a stand-in interpreter plays pip: it runs a snippet the test passes in
the build's environment, so each case takes a tenth of a second, not a build's seconds.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import itertools
import json
import os
import re
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from packaging.tags import sys_tags
from packaging.utils import parse_wheel_filename
from packaging.version import Version

from tests.fixtures.fake_upstream import FakeUpstream
from tests.fixtures.sdists import make_sdist
from wheelfarm.builder import isolation
from wheelfarm.builder.sandbox import (
    BuildLimits,
    BuildRequest,
    BuildResult,
    Outcome,
    bwrap_available,
    cleanup,
    run_build,
)
from wheelfarm.errors import ConfigError

# --------------------------------------------------------------------------- fixtures


def _can_build_without_isolation() -> bool:
    """Whether this interpreter alone can build setuptools wheels (setuptools 70.1 or wheel)."""
    try:
        setuptools = Version(importlib.metadata.version("setuptools"))
    except importlib.metadata.PackageNotFoundError:
        return False
    if setuptools < Version("61"):
        return False
    return setuptools >= Version("70.1") or importlib.util.find_spec("wheel") is not None


@pytest.fixture(scope="module")
def backend_wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Wheels of the build backend the fake index must serve: none when this venv builds alone.

    Otherwise (setuptools before 70.1 without ``wheel``) the builds use build isolation and
    install setuptools from the fake index, like a real builder installs it from the mirror.
    The wheel is fetched once, through this machine's own pip configuration.
    """
    if _can_build_without_isolation():
        return []
    directory = tmp_path_factory.mktemp("backend")
    command = [sys.executable, "-m", "pip", "download", "--only-binary", ":all:", "--no-deps"]
    command += ["--dest", str(directory), "setuptools>=70.1"]
    fetched = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    wheels = sorted(directory.glob("setuptools-*.whl"))
    if fetched.returncode != 0 or not wheels:
        pytest.fail(
            "this venv cannot build setuptools wheels without isolation (setuptools < 70.1"
            f" and no 'wheel'), and fetching setuptools>=70.1 failed:\n{fetched.stderr}"
        )
    return wheels


@pytest.fixture(scope="module")
def upstream(backend_wheels: list[Path]) -> Iterator[FakeUpstream]:
    """The fake index, serving the build backend when the builds need it."""
    with FakeUpstream() as fake:
        for wheel in backend_wheels:
            name, version, _, _ = parse_wheel_filename(wheel.name)
            fake.create(name)
            fake.add_file(name, str(version), wheel.name, content=wheel.read_bytes())
        yield fake


@pytest.fixture(scope="module")
def pip_options(backend_wheels: list[Path]) -> tuple[str, ...]:
    return () if backend_wheels else ("--no-build-isolation",)


def publish(upstream: FakeUpstream, sdist: Path, name: str, version: str) -> None:
    upstream.create(name)
    upstream.add_file(name, version, sdist.name, content=sdist.read_bytes())


def sdist_with_setup_py(directory: Path, name: str, version: str, setup_py: str) -> Path:
    """A minimal setuptools sdist whose ``setup.py`` is ``setup_py`` (it must call setup())."""
    stem = f"{name}-{version}"
    files = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        "pyproject.toml": (
            '[build-system]\nrequires = ["setuptools>=61"]\n'
            'build-backend = "setuptools.build_meta"\n\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\n'
        ),
        "setup.py": setup_py,
        f"{name}.py": "VALUE = 1\n",
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for relative, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{stem}/{relative}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def fake_python(tmp_path: Path) -> str:
    """An interpreter that plays ``python -m pip wheel``: it runs the build's $FAKE_PIP.

    The snippet sees pip's arguments in ``sys.argv`` and the wheel directory as ``out``.
    """
    script = tmp_path / "fake-bin" / "python"
    script.parent.mkdir()
    script.write_text(
        f"#!{sys.executable} -I\n"
        "import os, sys\n"
        "out = sys.argv[sys.argv.index('--wheel-dir') + 1]\n"
        "exec(os.environ['FAKE_PIP'])\n"
    )
    script.chmod(0o755)
    return str(script)


def fake_build(
    fake_python: str, workdir: Path, snippet: str, limits: BuildLimits | None = None
) -> BuildResult:
    request = BuildRequest(
        "pkg-name", "1.0", "http://127.0.0.1:9/simple/", environment={"FAKE_PIP": snippet},
        python=fake_python,
    )  # fmt: skip
    return run_build(request, workdir, limits or BuildLimits())


def build_processes(workdir: Path) -> dict[int, str]:
    """Live processes whose HOME lies in ``workdir`` (as every build process's does): cmdlines.

    Read from /proc, so it also sees processes that left the build's process group; zombies
    (already dead, waiting for a parent to reap them) do not count.
    """
    prefix = f"HOME={workdir}{os.sep}".encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue  # gone meanwhile, or not ours to read
        if state != "Z" and any(v.startswith(prefix) for v in environ.split(b"\0")):
            found[int(entry.name)] = cmdline.replace(b"\0", b" ").decode("utf-8", "replace")
    return found


# --------------------------------------------------------------------------- real builds


def test_pure_sdist_builds_one_universal_wheel(
    tmp_path: Path, upstream: FakeUpstream, pip_options: tuple[str, ...]
) -> None:
    sdist = make_sdist(tmp_path / "sdists", "sandbox-pure", "1.0")
    publish(upstream, sdist, "sandbox-pure", "1.0")

    (tmp_path / "work").mkdir()

    result = run_build(
        BuildRequest("sandbox-pure", "1.0", upstream.simple_url, pip_options), tmp_path / "work"
    )

    assert result.outcome is Outcome.BUILT, result.log.decode()
    assert result.reason is None
    assert [wheel.name for wheel in result.wheels] == ["sandbox_pure-1.0-py3-none-any.whl"]
    assert result.wheels[0].parent == result.directory / "out"
    assert result.directory.parent == (tmp_path / "work").resolve()
    assert b"Successfully built" in result.log
    with zipfile.ZipFile(result.wheels[0]) as wheel:
        assert "sandbox_pure/__init__.py" in wheel.namelist()

    cleanup(result)
    assert not result.directory.exists()


def test_c_extension_sdist_builds_a_wheel_for_this_platform(
    tmp_path: Path, upstream: FakeUpstream, pip_options: tuple[str, ...]
) -> None:
    sdist = make_sdist(tmp_path / "sdists", "sandbox-c", "1.0", kind="c")
    publish(upstream, sdist, "sandbox-c", "1.0")

    result = run_build(BuildRequest("sandbox-c", "1.0", upstream.simple_url, pip_options), tmp_path)

    assert result.outcome is Outcome.BUILT, result.log.decode()
    [wheel] = result.wheels
    tags = parse_wheel_filename(wheel.name)[3]
    assert all(tag.platform != "any" for tag in tags), wheel.name
    assert tags & set(sys_tags()), f"{wheel.name} does not install on this interpreter"


def test_failing_build_is_failed_with_its_error(
    tmp_path: Path, upstream: FakeUpstream, pip_options: tuple[str, ...]
) -> None:
    sdist = make_sdist(tmp_path / "sdists", "sandbox-fail", "1.0", fail_build=True)
    publish(upstream, sdist, "sandbox-fail", "1.0")

    result = run_build(
        BuildRequest("sandbox-fail", "1.0", upstream.simple_url, pip_options), tmp_path
    )

    assert result.outcome is Outcome.FAILED
    assert result.wheels == ()
    assert b"deliberate build failure" in result.log
    assert result.reason is not None
    assert "error" in result.reason.lower()


def test_slow_build_times_out_and_leaves_no_process(
    tmp_path: Path, upstream: FakeUpstream, pip_options: tuple[str, ...]
) -> None:
    sdist = make_sdist(tmp_path / "sdists", "sandbox-slow", "1.0", build_sleep=30)
    publish(upstream, sdist, "sandbox-slow", "1.0")
    work = (tmp_path / "work").resolve()
    work.mkdir()
    seen: dict[int, str] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            seen.update(build_processes(work))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = run_build(
            BuildRequest("sandbox-slow", "1.0", upstream.simple_url, pip_options),
            work,
            BuildLimits(timeout=4),
        )
    finally:
        done.set()
        watcher.join()

    assert result.outcome is Outcome.TIMEOUT
    assert result.reason == "timed out after 4 s"
    assert 4 <= result.duration < 10
    # The watcher saw pip's build hook (a child of pip, sleeping in setup.py): killing pip
    # alone would have left it running for half a minute.
    assert any("_in_process" in cmdline for cmdline in seen.values()), seen
    for _ in range(40):  # SIGKILL is delivered at once; give the kernel a moment to tear down
        if not build_processes(work):
            break
        time.sleep(0.05)
    assert build_processes(work) == {}


def test_cancelled_build_is_killed_with_its_group_and_says_why(
    tmp_path: Path, upstream: FakeUpstream, pip_options: tuple[str, ...]
) -> None:
    sdist = make_sdist(tmp_path / "sdists", "sandbox-cancel", "1.0", build_sleep=30)
    publish(upstream, sdist, "sandbox-cancel", "1.0")
    work = (tmp_path / "work").resolve()
    work.mkdir()
    seen: dict[int, str] = {}

    def cancelled() -> str | None:
        seen.update(build_processes(work))
        hook_running = any("_in_process" in cmdline for cmdline in seen.values())
        return "stopped by the test" if hook_running else None

    result = run_build(
        BuildRequest("sandbox-cancel", "1.0", upstream.simple_url, pip_options),
        work,
        BuildLimits(timeout=60),
        cancelled,
    )

    assert result.outcome is Outcome.CANCELLED
    assert result.reason == "stopped by the test"
    assert result.duration < 30  # the build hook sleeps 30 s: it did not run to its end
    for _ in range(40):
        if not build_processes(work):
            break
        time.sleep(0.05)
    assert build_processes(work) == {}


@pytest.mark.parametrize(
    ("name", "wanted"),
    [
        ("sandbox-later", "2.0"),  # the project is there, the release not yet
        ("sandbox-unknown", "1.0"),  # the project itself is not on the index yet
    ],
)
def test_release_missing_from_the_index_is_not_yet_available(
    tmp_path: Path, upstream: FakeUpstream, pip_options: tuple[str, ...], name: str, wanted: str
) -> None:
    if name == "sandbox-later":
        publish(upstream, make_sdist(tmp_path, name, "1.0"), name, "1.0")

    result = run_build(BuildRequest(name, wanted, upstream.simple_url, pip_options), tmp_path)

    assert result.outcome is Outcome.NOT_YET_AVAILABLE, result.log.decode()
    assert result.reason is not None
    assert f"{name}=={wanted}" in result.reason


def test_build_sees_a_scrubbed_environment(
    tmp_path: Path,
    upstream: FakeUpstream,
    pip_options: tuple[str, ...],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WHEELFARM_TOKEN", "secret-token-value")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/leaked/")
    # setup.py prints its environment as one JSON line; --verbose puts it in the log. (The
    # log, not a file: under bwrap the build cannot write outside its directory.)
    setup_py = (
        "import json, os\nfrom setuptools import setup\n"
        "print('ENVIRON-JSON:' + json.dumps(dict(os.environ)), flush=True)\n"
        "setup()\n"
    )
    sdist = sdist_with_setup_py(tmp_path, "sandbox_env", "1.0", setup_py)
    publish(upstream, sdist, "sandbox-env", "1.0")
    request = BuildRequest(
        "sandbox_env", "1.0", upstream.simple_url, (*pip_options, "--verbose"),
        environment={"BUILD_FLAVOUR": "plain"},
    )  # fmt: skip

    result = run_build(request, tmp_path)

    assert result.outcome is Outcome.BUILT, result.log.decode()
    dumps = re.findall(rb"ENVIRON-JSON:(\{.*\})", result.log)
    assert dumps, result.log.decode()
    environ = json.loads(dumps[-1])
    assert b"secret-token-value" not in result.log
    assert not any(key.startswith("WHEELFARM_") for key in environ)
    assert "PIP_INDEX_URL" not in environ
    assert environ["HOME"] == str(result.directory / "home")
    assert environ["TMPDIR"] == str(result.directory / "tmp")
    assert environ["PIP_CONFIG_FILE"] == os.devnull
    assert environ["LANG"] == "C.UTF-8"
    assert environ["BUILD_FLAVOUR"] == "plain"
    assert environ["PATH"].startswith(f"{Path(sys.executable).parent}:")


# --------------------------------------------------------------------------- the log


def test_log_keeps_its_tail_within_log_bytes(fake_python: str, tmp_path: Path) -> None:
    cap = 64 << 10
    lines = 300_000  # 3.6 MB of "line 0000123\n", then the last words
    snippet = (
        "w = sys.stdout.buffer.write\n"
        f"for i in range({lines}): w(b'line %07d\\n' % i)\n"
        "w(b'the last line\\n'); sys.exit(1)\n"
    )
    printed = lines * len(b"line 0000000\n") + len(b"the last line\n")
    before = len(fake_build(fake_python, tmp_path, "", BuildLimits(log_bytes=cap)).log)

    result = fake_build(fake_python, tmp_path, snippet, BuildLimits(log_bytes=cap))

    header, rest = result.log.split(b"\n", 1)
    match = re.fullmatch(rb"\[log truncated: (\d+) bytes dropped\]", header)
    assert match, header
    body = rest[before:]  # after the no-bwrap notice, if any
    assert len(body) <= cap
    assert body.startswith(b"line ")  # cut at a line start
    assert body.endswith(b"line 0299999\nthe last line\n")
    assert int(match[1]) + len(body) == printed  # nothing lost but what it says
    assert result.reason == "the last line"


def test_short_log_is_kept_whole(fake_python: str, tmp_path: Path) -> None:
    result = fake_build(fake_python, tmp_path, "print('hello'); sys.exit(1)")
    assert not result.log.startswith(b"[log truncated")
    assert result.log.endswith(b"hello\n")


# --------------------------------------------------------------------------- verdicts

WHEEL = "open(os.path.join(out, 'pkg_name-1.0-py3-none-any.whl'), 'wb').write(b'PK')"

VERDICTS = [
    # pip's own words for a release the index does not list (yet): transient
    (
        "print('ERROR: Could not find a version that satisfies the requirement pkg-name==1.0"
        " (from versions: none)'); print('ERROR: No matching distribution found for"
        " pkg-name==1.0'); sys.exit(1)",
        Outcome.NOT_YET_AVAILABLE,
        "pkg-name==1.0",
    ),
    # the same, in another spelling of the name
    (
        "print('ERROR: No matching distribution found for PKG_Name==1.0'); sys.exit(1)",
        Outcome.NOT_YET_AVAILABLE,
        "PKG_Name==1.0",
    ),
    # a missing *build dependency* is said the same way, but waiting will not fix it
    (
        "print('ERROR: No matching distribution found for setuptools>=61');"
        " print('error: subprocess-exited-with-error'); print('note: see above'); sys.exit(1)",
        Outcome.FAILED,
        "error: subprocess-exited-with-error",
    ),
    # the last line that mentions an error, not the notes after it
    (
        "print('gcc -c x.c'); print(\"error: command 'gcc' failed\"); print('note: hint');"
        " sys.exit(1)",
        Outcome.FAILED,
        "error: command 'gcc' failed",
    ),
    # no error line: the last non-empty line
    ("print('some output'); print('last words'); print(); sys.exit(2)", Outcome.FAILED, "last"),
    # nothing said at all: the exit status (checked below to end the log)
    ("sys.exit(3)", Outcome.FAILED, "pip exited with status 3"),
    # success without a wheel is a failure
    ("print('done')", Outcome.FAILED, "pip succeeded but wrote no wheel"),
    # a wheel that is a symlink (to the builder's secrets, say) is not a wheel
    (
        "os.symlink('/etc/passwd', os.path.join(out, 'pkg_name-1.0-py3-none-any.whl'))",
        Outcome.FAILED,
        "pip succeeded but wrote no wheel",
    ),
    (WHEEL, Outcome.BUILT, None),
]


@pytest.mark.parametrize(("snippet", "outcome", "reason"), VERDICTS)
def test_outcome_and_reason_follow_pips_output(
    fake_python: str, tmp_path: Path, snippet: str, outcome: Outcome, reason: str | None
) -> None:
    result = fake_build(fake_python, tmp_path, snippet)

    assert result.outcome is outcome, result.log.decode()
    if reason is None:
        assert result.reason is None
        assert [wheel.name for wheel in result.wheels] == ["pkg_name-1.0-py3-none-any.whl"]
    else:
        assert result.reason is not None
        assert reason in result.reason
        assert result.wheels == ()


# --------------------------------------------------------------------------- limits and sandbox

MiB = 1 << 20


@pytest.mark.parametrize(
    ("limits", "snippet", "refusal"),
    [
        (
            BuildLimits(file_bytes=4 * MiB),
            "open(os.path.join(os.environ['TMPDIR'], 'big'), 'wb').write(bytes(16 * 2**20))",
            "File too large",
        ),
        (
            BuildLimits(memory_bytes=512 * MiB),
            "import mmap; mmap.mmap(-1, 2**30)",  # address space only: nothing is touched
            "Cannot allocate memory",
        ),
    ],
    ids=["file_bytes", "memory_bytes"],
)
def test_resource_limits_bind_the_build(
    fake_python: str, tmp_path: Path, limits: BuildLimits, snippet: str, refusal: str
) -> None:
    limited = fake_build(fake_python, tmp_path, f"{snippet}\n{WHEEL}", limits)
    unlimited = fake_build(
        fake_python,
        tmp_path,
        f"{snippet}\n{WHEEL}",
        BuildLimits(memory_bytes=None, file_bytes=None),
    )

    assert limited.outcome is Outcome.FAILED
    assert limited.reason is not None
    assert refusal in limited.reason
    assert unlimited.outcome is Outcome.BUILT, unlimited.log.decode()


@pytest.mark.skipif(
    not bwrap_available() and not os.environ.get("CI"),  # CI installs bubblewrap: never skip there
    reason="bwrap is not installed or cannot run here",
)
def test_bwrap_keeps_the_build_from_writing_outside_its_directory(
    fake_python: str, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    snippet = f"open({str(outside)!r}, 'w').write('escaped')\n{WHEEL}"

    result = fake_build(fake_python, tmp_path, snippet)

    assert result.sandboxed
    assert result.outcome is Outcome.FAILED
    assert b"Read-only file system" in result.log
    assert not outside.exists()


def test_log_says_when_the_build_runs_without_bwrap(
    fake_python: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(isolation, "usable_bwrap", lambda: None)  # as on a machine without it
    result = fake_build(fake_python, tmp_path, WHEEL)

    assert not result.sandboxed
    assert result.outcome is Outcome.BUILT
    assert result.log.startswith(b"[sandbox: bwrap ")


class _RecordingIsolation:
    """A third isolation, as a chroot under qemu would be: the sandbox only calls ``wrap``."""

    name = "recording"
    confined = False
    notice = b"[sandbox: recording]\n"

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], Path]] = []

    def wrap(self, command: Sequence[str], directory: Path) -> list[str]:
        self.calls.append((list(command), directory))
        return list(command)


def test_a_new_isolation_plugs_in_without_changing_the_sandbox(
    fake_python: str, tmp_path: Path
) -> None:
    recording = _RecordingIsolation()
    request = BuildRequest(
        "pkg-name", "1.0", "http://127.0.0.1:9/simple/", environment={"FAKE_PIP": WHEEL},
        python=fake_python,
    )  # fmt: skip

    result = run_build(request, tmp_path, BuildLimits(), isolation=recording)

    assert result.outcome is Outcome.BUILT
    assert result.log.startswith(b"[sandbox: recording]\n")
    assert not result.sandboxed
    [(command, directory)] = recording.calls
    assert directory == result.directory
    assert command[1:5] == ["-m", "pip", "wheel", "pkg-name==1.0"]


def test_bubblewrap_binds_only_the_build_directory_writable(tmp_path: Path) -> None:
    wrapped = isolation.Bubblewrap("/usr/bin/bwrap").wrap([sys.executable, "-m", "pip"], tmp_path)

    assert wrapped[0] == "/usr/bin/bwrap"
    assert wrapped[-4:] == ["--", sys.executable, "-m", "pip"]
    pairs = list(itertools.pairwise(wrapped))
    writable = [target for option, target in pairs if option == "--bind"]
    read_only = {target for option, target in pairs if option == "--ro-bind"}
    assert writable == [str(tmp_path)]
    assert "/" not in read_only  # not the whole root any more: only what a build needs
    assert not {"/etc", "/etc/shadow", "/root", "/home", "/var", "/run", "/tmp"} & read_only
    assert not any(path.startswith("/etc/shadow") for path in read_only)
    assert sys.base_prefix in read_only or sys.base_prefix.startswith("/usr")
    assert ("--remount-ro", "/") in pairs and ("--cap-drop", "ALL") in pairs
    assert "--unshare-pid" in wrapped
    assert isolation.NoIsolation().wrap(["pip", "wheel"], tmp_path) == ["pip", "wheel"]


def test_isolation_is_chosen_by_what_works_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(isolation, "usable_bwrap", lambda: None)
    assert isolation.choose_isolation().name == "none"
    monkeypatch.setattr(isolation, "usable_bwrap", lambda: "/usr/bin/bwrap")
    chosen = isolation.choose_isolation()
    assert (chosen.name, chosen.confined, chosen.notice) == ("bubblewrap", True, b"")


# --------------------------------------------------------------------------- inputs


def test_cleanup_removes_a_directory_the_build_made_read_only(
    fake_python: str, tmp_path: Path
) -> None:
    snippet = (
        "d = os.path.join(os.environ['HOME'], 'locked'); os.mkdir(d)\n"
        "open(os.path.join(d, 'f'), 'w').write('x'); os.chmod(d, 0o500)\n" + WHEEL
    )
    result = fake_build(fake_python, tmp_path, snippet)
    assert (result.directory / "home" / "locked" / "f").exists()

    cleanup(result)

    assert not result.directory.exists()


def test_missing_interpreter_is_a_config_error(tmp_path: Path) -> None:
    request = BuildRequest("x", "1.0", "http://127.0.0.1:9/simple/", python="/nonexistent/python")
    with pytest.raises(ConfigError) as caught:
        run_build(request, tmp_path)
    assert caught.value.setting == "python"
    assert list(tmp_path.iterdir()) == []


def test_bad_request_is_refused_with_every_problem() -> None:
    with pytest.raises(ValueError) as caught:
        BuildRequest("--index-url", "not a version", "", environment={"A=B": "c"})
    message = str(caught.value)
    for problem in ("'--index-url'", "'not a version'", "index_url ''", "'A=B'"):
        assert problem in message


@pytest.mark.parametrize(
    "arguments",
    [
        {"timeout": 0},
        {"memory_bytes": 0},
        {"file_bytes": -1},
        {"log_bytes": 0},
    ],
)
def test_bad_limits_are_refused(arguments: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(arguments))):
        BuildLimits(**arguments)
