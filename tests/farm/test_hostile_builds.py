"""A hostile sdist, built by a real builder: what its setup.py reaches stays in the sandbox.

Its ``setup.py`` tries to read the master's database, ``/etc/shadow``, every process's
environment, the builder's own ``/proc`` entries, ``/root`` and ``/home``, to write into the
published tree, and prints the builder's token (as if it had learned it): none of that may
reach its log, which the index publishes, or the tree.
"""

from __future__ import annotations

import os
import threading
import zlib
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.farm.conftest import Farm
from tests.fixtures.sdists import make_sdist
from wheelfarm.builder import isolation
from wheelfarm.builder.loop import REDACTED, BuilderOptions, redact, run_builder
from wheelfarm.errors import ConfigError
from wheelfarm.store.schema import builds, jobs

DATABASE_SECRET = "MASTER-DATABASE-ROW-7f3a"
ENVIRONMENT_SECRET = "BUILDER-ENVIRONMENT-SECRET-91c2"

HOSTILE = """
import glob, os

def attempt(what, action):
    try:
        print("STOLEN", what, repr(action())[:4000], flush=True)
    except Exception as error:
        print("BLOCKED", what, type(error).__name__, flush=True)

def environments():
    found = []
    for path in glob.glob("/proc/*/environ"):
        try:
            found.append(open(path, "rb").read())
        except OSError:
            pass
    return found

def memory(pid):
    maps = open(f"/proc/{pid}/maps").read().splitlines()
    start, end = (int(x, 16) for x in maps[0].split()[0].split("-"))
    with open(f"/proc/{pid}/mem", "rb") as handle:
        handle.seek(start)
        return handle.read(min(end - start, 4096))

attempt("database", lambda: open(DATABASE).read())
attempt("data-dir", lambda: os.listdir(DATA))
attempt("shadow", lambda: open("/etc/shadow").read())
attempt("environments", environments)
attempt("builder-environ", lambda: open(f"/proc/{BUILDER}/environ", "rb").read())
attempt("builder-cmdline", lambda: open(f"/proc/{BUILDER}/cmdline", "rb").read())
attempt("builder-memory", lambda: memory(BUILDER))
attempt("root", lambda: os.listdir("/root"))
attempt("home", lambda: os.listdir("/home"))
attempt("publish", lambda: open(TREE + "/evil.html", "w").write("defaced"))
print("TOKEN-LEAK", TOKEN, flush=True)
"""


def _hostile_sdist(directory: Path, data: Path, token: str) -> Path:
    code = (
        f"DATABASE = {str(data / 'wheelfarm.sqlite')!r}\nDATA = {str(data)!r}\n"
        f"TREE = {str(data / 'www' / 'files')!r}\nBUILDER = {os.getpid()}\n"
        f"TOKEN = {token!r}\n" + HOSTILE
    )
    return make_sdist(directory, "demo-hostile", "1.0", setup_code=code)


def _fake_master_data(tmp_path: Path) -> Path:
    """A master's data directory: a database with a secret row and a published tree."""
    data = tmp_path / "data"
    (data / "www" / "files").mkdir(parents=True)
    (data / "wheelfarm.sqlite").write_text(f"SQLite format 3\0{DATABASE_SECRET}\n")
    return data


@pytest.mark.skipif(
    not isolation.bwrap_available() and not os.environ.get("CI"),  # CI has bubblewrap: never skip
    reason="bwrap is not installed or cannot run here",
)
def test_a_hostile_build_reaches_nothing_of_the_master_or_the_builder(
    farm: Farm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHEELFARM_SOMETHING", ENVIRONMENT_SECRET)  # in the builder's memory
    data = _fake_master_data(tmp_path)
    farm.publish(_hostile_sdist(tmp_path / "sdists", data, farm.token), "demo-hostile", "1.0")
    options = BuilderOptions(
        workdir=data / "build",  # as wheelfarm up builds: inside the master's data directory
        pip_options=("--no-build-isolation", "--verbose"),  # --verbose: setup.py's output
    )

    assert run_builder(farm.client(), options, threading.Event(), jobs=1) == 1

    with farm.engine.connect() as connection:
        build = connection.execute(select(builds)).one()
        state = connection.execute(select(jobs.c.state)).scalar_one()
    log = zlib.decompress(build.log).decode()
    assert state == "built", log
    for what in ("database", "shadow", "builder-environ", "builder-cmdline"):
        assert f"BLOCKED {what} " in log, log
    # of the data directory only the way down to the build directory exists, empty
    assert "STOLEN data-dir ['build']" in log
    assert "BLOCKED builder-memory" in log
    assert "BLOCKED publish" in log and not (data / "www" / "files" / "evil.html").exists()
    assert DATABASE_SECRET not in log
    assert ENVIRONMENT_SECRET not in log
    assert farm.token not in log and f"TOKEN-LEAK {REDACTED}" in log
    if os.path.exists("/etc/shadow") and os.access("/etc/shadow", os.R_OK):
        first = Path("/etc/shadow").read_text().splitlines()[0]
        assert first not in log
    # /root shows at most the one interpreter prefix bound inside it, and /home nothing
    assert "STOLEN home" not in log or "STOLEN home []" in log
    assert "'.pyenv'" in log or "BLOCKED root" in log or "STOLEN root []" in log


def test_without_bwrap_the_builder_refuses_to_build_unless_allowed(
    farm: Farm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(isolation, "usable_bwrap", lambda: None)  # as on a machine without it
    farm.publish(make_sdist(tmp_path / "sdists", "demo-pure", "1.0"), "demo-pure", "1.0")
    options = BuilderOptions(workdir=tmp_path / "work", pip_options=("--no-build-isolation",))
    with pytest.raises(ConfigError, match="allow_unsandboxed_builds"):
        run_builder(farm.client(), options, threading.Event(), jobs=1)
    with farm.engine.connect() as connection:
        assert connection.execute(select(builds)).all() == []  # nothing was even claimed

    allowed = BuilderOptions(
        workdir=tmp_path / "work", pip_options=("--no-build-isolation",), allow_unsandboxed=True
    )
    assert run_builder(farm.client(), allowed, threading.Event(), jobs=1) == 1
    with farm.engine.connect() as connection:
        build = connection.execute(select(builds)).one()
    assert build.status == "built"
    log = zlib.decompress(build.log)
    assert b"\nisolation: none\n" in log.split(b"=== build output ===\n")[0]  # the header
    assert b"=== build output ===\n[sandbox: bwrap is not installed" in log  # output's first line


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("token s3cr3t-t0ken here", f"token {REDACTED} here"),
        ("url-quoted s3cr3t%2Ft0ken", f"url-quoted {REDACTED}"),
        ("hex " + b"s3cr3t/t0ken".hex(), f"hex {REDACTED}"),
        ("nothing secret", "nothing secret"),
    ],
)
def test_secrets_are_redacted_in_every_common_spelling(text: str, shown: str) -> None:
    secret = "s3cr3t-t0ken" if "t0ken here" in text else "s3cr3t/t0ken"
    assert redact(text, [secret, ""]) == shown
