"""The two servers of the published tree, started for real: wheelfarm's own and nginx.

Both serve the same small tree written here, so one behaviour suite can run against each. nginx
runs docs/nginx.conf itself, with only its placeholders (listen, root, upstream) replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from wheelfarm.publish.tree import gzip_bytes

REPO = Path(__file__).resolve().parents[2]
NGINX_CONF = REPO / "docs" / "nginx.conf"
NGINX_SERIAL_JS = REPO / "docs" / "nginx-serial.js"
NGINX = "/usr/sbin/nginx"
# nginx's njs module (Debian: libnginx-mod-http-js), which docs/nginx.conf needs for the serial.
NJS_MODULE = Path("/usr/lib/nginx/modules/ngx_http_js_module.so")

# The tree's files that tests read back byte for byte.
ROOT_HTML = b"<!DOCTYPE html><title>wheelfarm</title><h1>Home</h1>\n"
NOT_FOUND_HTML = b"<!DOCTYPE html><title>Not found</title><p>No such page here.</p>\n"
SIMPLE_ROOT_HTML = b'<!DOCTYPE html><a href="foo-bar/">Foo.Bar</a>\n'
SIMPLE_ROOT_JSON = b'{"meta": {"api-version": "1.1"}, "projects": [{"name": "Foo.Bar"}]}\n'
PROJECT_HTML = b'<!DOCTYPE html><a href="/files/foo-bar/foo_bar-1.0-py3-none-any.whl">x</a>\n'
PROJECT_JSON = b'{"meta": {"api-version": "1.1"}, "name": "foo-bar", "files": []}\n'
WHEEL = "foo_bar-1.0-py3-none-any.whl"
WHEEL_BYTES = bytes(range(256)) * 64  # 16 KiB of every byte value
METADATA = "Metadata-Version: 2.1\nName: Foo.Bar\nVersion: 1.0\nSummary: caf\u00e9\n".encode()
SECRET = b"outside the root: never served\n"
# A project whose pages are above 1 KB, so they have gzip siblings, as the publisher writes them.
BIG_SERIAL = 21
BIG_HTML = (
    f"<!DOCTYPE html>\n<title>Links for big</title>\n<!--SERIAL {BIG_SERIAL}-->\n".encode()
    + b"".join(
        b'<a href="/files/big/big-%d.0-py3-none-any.whl">big</a><br>\n' % i for i in range(40)
    )
)
BIG_JSON = (
    b'{"meta":{"api-version":"1.1","_last-serial":%d},"name":"big","files":[' % BIG_SERIAL
    + b",".join(b'{"filename":"big-%d.0-py3-none-any.whl"}' % i for i in range(40))
    + b"]}"
)

# A project whose pages are above the built-in server's in-memory limit (SMALL_FILE), so both
# servers stream them and read the serial from the start of the file alone.
HUGE_SERIAL = 34
HUGE_HTML = (
    f"<!DOCTYPE html>\n<title>Links for huge</title>\n<!--SERIAL {HUGE_SERIAL}-->\n".encode()
    + b"".join(
        b'<a href="/files/huge/huge-%d.0-py3-none-any.whl">huge</a><br>\n' % i
        for i in range(20_000)
    )
)
HUGE_JSON = (
    b'{"meta":{"api-version":"1.1","_last-serial":%d},"name":"huge","files":[' % HUGE_SERIAL
    + b",".join(b'{"filename":"huge-%d.0-py3-none-any.whl"}' % i for i in range(30_000))
    + b"]}"
)


def write_tree(base: Path) -> Path:
    """A small published tree under ``base/www`` and a secret file beside it; returns the root."""
    root = base / "www"
    files = {
        "index.html": ROOT_HTML,
        "404.html": NOT_FOUND_HTML,
        "packages.json": b'{"projects": ["foo-bar"]}\n',
        "sitemap.xml": b'<?xml version="1.0"?><urlset></urlset>\n',
        "search/index.html": b"<!DOCTYPE html><title>Search</title>\n",
        "static/site.css": b"body { margin: 0 }\n",
        "static/site.js": b"console.log('hi');\n",
        "simple/index.html": SIMPLE_ROOT_HTML,
        "simple/index.json": SIMPLE_ROOT_JSON,
        "simple/foo-bar/index.html": PROJECT_HTML,
        "simple/foo-bar/index.json": PROJECT_JSON,
        f"files/foo-bar/{WHEEL}": WHEEL_BYTES,
        f"files/foo-bar/{WHEEL}.metadata": METADATA,
        "project/foo-bar/index.html": b"<!DOCTYPE html><title>foo-bar</title>\n",
        "project/foo-bar/json/index.json": b'{"info": {"name": "foo-bar"}}\n',
        "badges/foo-bar.svg": b'<svg xmlns="http://www.w3.org/2000/svg"></svg>\n',
        "logs/7.txt": b"build log\n",
        ".lock": b"",  # the publisher's own files, and a half-written page: never served
        ".gzip-siblings": b"",
        "simple/foo-bar/.index.html.tmp": PROJECT_HTML,
    }
    for relative, content in {**files, **_big_pages()}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (base / "secret.txt").write_bytes(SECRET)
    (root / "link-out.txt").symlink_to(base / "secret.txt")
    (root / "files" / "link-dir").symlink_to(base)
    (root / "link-in.html").symlink_to(root / "index.html")  # inside, but refused all the same
    return root


BIG_PROJECT_JSON = json.dumps(
    {
        "meta": {"api_version": "1.0"},
        "name": "big",
        "display_name": "Big",
        "summary": "A big one",
        "serial": BIG_SERIAL,
        "upstream_url": "https://index.example.org/project/big/",
        "releases": {
            "2.0": {"prerelease": False, "yanked": True, "yanked_reason": "bad", "files": []},
            "1.0": {
                "prerelease": False,
                "yanked": False,
                "yanked_reason": None,
                "requires_python": ">=3.8",
                "files": [
                    {
                        "filename": "big-1.0-py3-none-any.whl",
                        "url": "/files/big/big-1.0-py3-none-any.whl",
                        "sha256": "ab" * 32,
                        "size": 1234,
                        "requires_python": ">=3.8",
                        "uploaded": "2026-11-23T10:00:00.123456Z",
                    }
                ],
            },
        },
    }
).encode()


def _big_pages() -> dict[str, bytes]:
    """The big and huge projects' pages and their gzip siblings, as the publisher writes them."""
    pages = {
        "simple/big/index.html": BIG_HTML,
        "simple/big/index.json": BIG_JSON,
        "simple/huge/index.html": HUGE_HTML,
        "simple/huge/index.json": HUGE_JSON,
    }
    return {
        **pages,
        **{f"{path}.gz": gzip_bytes(data) for path, data in pages.items()},
        "project/big/json/index.json": BIG_PROJECT_JSON,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited with {process.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen on {port}:\n{log.read_text()}")


def nginx_available() -> None:
    """Skip when nginx is missing, except under CI (which installs it): there it is a failure."""
    if (shutil.which(NGINX) or os.access(NGINX, os.X_OK)) and NJS_MODULE.exists():
        return
    message = (
        f"nginx or its njs module is not installed ({NGINX}, {NJS_MODULE}); "
        "apt-get install nginx libnginx-mod-http-js"
    )
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must run the nginx tests)")
    pytest.skip(message)


def nginx_site(root: Path, port: int, upstream_port: int) -> str:
    """docs/nginx.conf with its three placeholders set for a test."""
    text = NGINX_CONF.read_text()
    replacements = {
        "listen 80;": f"listen 127.0.0.1:{port};",
        "root /var/lib/wheelfarm/www;": f"root {root};",
        "server 127.0.0.1:8080;": f"server 127.0.0.1:{upstream_port};",
        "/etc/nginx/wheelfarm/nginx-serial.js;": f"{NGINX_SERIAL_JS};",
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, f"docs/nginx.conf lost its placeholder {old!r}"
        text = text.replace(old, new)
    return text


@dataclass
class Nginx:
    """A foreground nginx with every path it writes inside ``workdir``."""

    process: subprocess.Popen[bytes]
    url: str
    workdir: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def main_conf(workdir: Path, site: Path, *, workers: str = "1") -> str:
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers as nobody could not read tmp
    temp = " ".join(
        f"{kind}_temp_path {workdir / kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    return (
        f"load_module {NJS_MODULE};\n"
        f"{user}worker_processes {workers};\n"
        f"pid {workdir / 'nginx.pid'};\n"
        f"error_log {workdir / 'error.log'} warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"    access_log {workdir / 'access.log'};\n"
        f"    {temp}\n"
        f"    uwsgi_temp_path {workdir / 'uwsgi'}; scgi_temp_path {workdir / 'scgi'};\n"
        f"    include {site};\n"
        "}\n"
    )


def start_nginx(
    workdir: Path, root: Path, upstream_port: int, *, workers: str = "1", access_log: bool = True
) -> Nginx:
    """Start nginx on a free loopback port serving ``root`` with docs/nginx.conf."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    site = workdir / "wheelfarm.conf"
    site.write_text(nginx_site(root, port, upstream_port))
    conf = workdir / "nginx.conf"
    text = main_conf(workdir, site, workers=workers)
    if not access_log:
        text = text.replace(f"access_log {workdir / 'access.log'};", "access_log off;")
    conf.write_text(text)
    log = workdir / "error.log"
    command = [NGINX, "-p", str(workdir), "-c", str(conf), "-e", str(log), "-g", "daemon off;"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process, log)
    except BaseException:
        process.kill()
        process.wait(timeout=10)
        raise
    return Nginx(process, f"http://127.0.0.1:{port}", workdir)


def raw_request(url: str, target: str, method: str = "GET") -> tuple[int, bytes]:
    """Send the request line exactly as given (HTTP clients normalise '..' away) and read it all."""
    host, port = url.removeprefix("http://").split(":")
    request = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request.encode("latin-1"))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    status = int(response.split(b" ", 2)[1])
    return status, response.partition(b"\r\n\r\n")[2]
