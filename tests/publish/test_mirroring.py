"""Clients that cache and mirror, for real: bandersnatch mirrors the index and pip installs from
the mirror; uv sees a change made after its first resolve; pypi-simple reads the serials.

Each test publishes a small index of its own (real wheels imported into a SQLite store, the
tree written by the publisher, served by wheelfarm's server), so it can change it and publish
again. bandersnatch and pypi-simple are installed from the package registry into a virtual
environment of their own, once per session.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
import venv
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.farm.test_intake import make_wheel
from tests.publish.states import NOW, UPSTREAM, State
from tests.publish.test_clients import UV, clean_env, fresh_venv, installed_version
from wheelfarm.farm.wheels import import_wheel
from wheelfarm.publish.incremental import publish_dirty
from wheelfarm.publish.regenerate import write_all
from wheelfarm.store.database import open_store
from wheelfarm.web.runner import RunningServer, serve_index_in_thread

NAME = "mirrored"


@pytest.fixture(scope="session")
def mirror_tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` of a virtual environment with bandersnatch and pypi-simple, from the registry
    (a failure to install them fails the tests: they must not be skipped)."""
    environment = tmp_path_factory.mktemp("mirror-tools") / "venv"
    venv.create(environment, with_pip=True)
    done = subprocess.run(
        [environment / "bin" / "python", "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", "bandersnatch", "pypi-simple"],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"cannot install bandersnatch and pypi-simple:\n{done.stderr}"
    return environment / "bin"


@dataclass
class SmallIndex:
    state: State
    server: RunningServer

    @property
    def url(self) -> str:
        return self.server.url

    def add(self, version: str, name: str = NAME) -> None:
        """A release with a real, installable wheel, imported and published."""
        self.state.release(name, version)
        filename = f"{name}-{version}-py3-none-any.whl"
        members = {f"{name}/__init__.py": f"VERSION = {version!r}\n".encode()}  # RECORD: added
        path = self.state.spool / filename
        shutil.move(make_wheel(self.state.spool, filename, members), path)
        with self.state.engine.begin() as connection:
            import_wheel(connection, path, self.state.wheel_dir, now=NOW)
        self.publish()

    def remove(self, name: str, version: str | None = None) -> None:
        """The upstream removes a release (or, without a version, the project): published."""
        self.state.event(name, version, "remove release" if version else "remove project")
        self.publish()

    def publish(self) -> None:
        publish_dirty(
            self.state.engine, self.state.tree, upstream_simple_url=UPSTREAM, base_url="x"
        )


@pytest.fixture
def small_index(tmp_path: Path) -> Iterator[SmallIndex]:
    engine: Engine = open_store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    state = State(engine, tmp_path / "index")
    state.target()
    write_all(engine, state.tree, upstream_simple_url=UPSTREAM, base_url="x")
    server = serve_index_in_thread(state.tree.root, access_log=True)
    index = SmallIndex(state, server)
    index.add("1.0")
    yield index
    server.stop()
    engine.dispose()


def bandersnatch(tools: Path, index: SmallIndex, mirror: Path) -> subprocess.CompletedProcess[str]:
    conf = mirror.parent / "bandersnatch.conf"
    conf.write_text(
        "[mirror]\n"
        f"directory = {mirror}\n"
        f"master = {index.url}\n"
        "allow-non-https = true\n"
        "json = true\n"
        "release-files = true\n"
        "hash-index = false\n"
        "simple-format = ALL\n"
        "compare-method = hash\n"
        "digest_name = sha256\n"
        "stop-on-error = true\n"
        "timeout = 30\n"
        "global-timeout = 300\n"
        "workers = 1\n"
        "storage-backend = filesystem\n"
        "verifiers = 1\n"
        "api-method = xmlrpc\n"
    )
    return subprocess.run(
        [tools / "bandersnatch", "--config", conf, "mirror"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture
def static_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A plain static file server (the standard library's) over a directory, as a mirror is
    served: bandersnatch writes simple pages and files, nothing more."""
    web = tmp_path / "mirror" / "web"
    web.mkdir(parents=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(web))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield web, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def pip_install_from(url: str, tmp_path: Path, requirement: str) -> tuple[str, str]:
    python = fresh_venv(tmp_path / requirement.replace("=", "_"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--index-url", f"{url}/simple/", requirement],
        env=clean_env(tmp_path), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return installed_version(python, NAME), done.stdout


def test_bandersnatch_mirrors_the_index_and_pip_installs_from_the_mirror(
    mirror_tools: Path, small_index: SmallIndex, static_server: tuple[Path, str], tmp_path: Path
) -> None:
    web, mirror_url = static_server
    first = bandersnatch(mirror_tools, small_index, web.parent)
    assert first.returncode == 0, first.stdout + first.stderr
    wheel = web / "packages" / NAME / f"{NAME}-1.0-py3-none-any.whl"
    assert wheel.read_bytes() == (small_index.state.wheel_dir / NAME / wheel.name).read_bytes()
    assert pip_install_from(mirror_url, tmp_path / "one", NAME)[0] == "1.0"

    small_index.add("2.0")  # a change: the second run picks it up from the changelog
    second = bandersnatch(mirror_tools, small_index, web.parent)
    assert second.returncode == 0, second.stdout + second.stderr
    assert (web / "packages" / NAME / f"{NAME}-2.0-py3-none-any.whl").is_file()
    assert pip_install_from(mirror_url, tmp_path / "two", NAME)[0] == "2.0"
    status = json.loads((web.parent / "status").read_text())
    published = json.loads((small_index.state.tree.simple / "index.json").read_bytes())
    assert status == published["meta"]["_last-serial"]


def test_bandersnatch_drops_what_the_index_removed(
    mirror_tools: Path, small_index: SmallIndex, static_server: tuple[Path, str], tmp_path: Path
) -> None:
    """A removed release leaves the mirror's simple page at the next run (its project's serial
    moved); a removed project is named by the changelog as removed (bandersnatch then reads
    its JSON, gets 404 and skips it: ``mirror`` deletes nothing, see docs/serving.md)."""
    web, mirror_url = static_server
    small_index.add("2.0")
    small_index.add("1.0", name="gone")
    first = bandersnatch(mirror_tools, small_index, web.parent)
    assert first.returncode == 0, first.stdout + first.stderr
    packages = web / "packages"
    old_wheel = packages / NAME / f"{NAME}-1.0-py3-none-any.whl"
    gone_wheel = packages / "gone" / "gone-1.0-py3-none-any.whl"
    assert old_wheel.is_file() and gone_wheel.is_file()
    mirrored_serial = json.loads((web.parent / "status").read_text())

    small_index.remove(NAME, "1.0")
    small_index.remove("gone")
    with xmlrpc.client.ServerProxy(f"{small_index.url}/pypi") as proxy:
        rows: list[list[Any]] = proxy.changelog_since_serial(mirrored_serial)  # type: ignore[assignment]
    assert {(row[0], row[3]) for row in rows} == {(NAME, "update"), ("gone", "remove project")}

    second = bandersnatch(mirror_tools, small_index, web.parent)
    assert second.returncode == 0, second.stdout + second.stderr
    page = (web / "simple" / NAME / "index.html").read_text()
    assert f"{NAME}-2.0-py3-none-any.whl" in page and f"{NAME}-1.0-" not in page
    assert pip_install_from(mirror_url, tmp_path / "pinned", f"{NAME}==2.0")[0] == "2.0"

    # The files stay on disk until ``bandersnatch verify --delete --json-update``, which
    # refuses a master that is not https (7.1), as this test's loopback server is not.
    assert old_wheel.is_file()


PYPI_SIMPLE_SCRIPT = """
import json, sys
from pypi_simple import ACCEPT_JSON_ONLY, ACCEPT_HTML_ONLY, PyPISimple
with PyPISimple(sys.argv[1]) as client:
    print(json.dumps({
        "html": client.get_project_page(sys.argv[2], accept=ACCEPT_HTML_ONLY).last_serial,
        "json": client.get_project_page(sys.argv[2], accept=ACCEPT_JSON_ONLY).last_serial,
        "index": client.get_index_page(accept=ACCEPT_JSON_ONLY).last_serial,
        "status": str(client.get_project_page(sys.argv[2]).status),
        "tracks": client.get_project_page(sys.argv[2]).tracks,
    }))
"""


def test_pypi_simple_reads_the_serials_from_html_and_json(
    mirror_tools: Path, small_index: SmallIndex
) -> None:
    done = subprocess.run(
        [mirror_tools / "python", "-c", PYPI_SIMPLE_SCRIPT, f"{small_index.url}/simple/", NAME],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    read = json.loads(done.stdout)
    page = json.loads((small_index.state.tree.simple / NAME / "index.json").read_bytes())
    serial = str(page["meta"]["_last-serial"])
    assert read["html"] == read["json"] == serial  # HTML: from X-PyPI-Last-Serial
    assert read["index"] == serial
    assert read["status"] == "active"
    assert read["tracks"] == [f"{UPSTREAM}{NAME}/"]


def test_uv_revalidates_and_sees_a_release_published_after_its_first_resolve(
    small_index: SmallIndex, tmp_path: Path
) -> None:
    if UV is None:
        pytest.fail("uv is not installed (it comes with the test extras)")
    env = clean_env(tmp_path)  # one uv cache for both resolves

    def uv_install(where: str) -> str:
        python = fresh_venv(tmp_path / where)
        done = subprocess.run(
            [UV, "pip", "install", "--python", str(python), "--index-url",
             f"{small_index.url}/simple/", NAME],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return installed_version(python, NAME)

    assert uv_install("first") == "1.0"
    small_index.add("2.0")
    assert uv_install("second") == "2.0"
