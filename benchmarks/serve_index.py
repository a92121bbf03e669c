"""Benchmark: simple pages per second from wheelfarm's server, from nginx, and from pypiserver.

A tree of PROJECTS projects, each with WHEELS wheel files and simple pages of a few KB, is served
by (a) ``wheelfarm serve`` (a process of its own, as in production), (b) nginx running
docs/nginx.conf with ``worker_processes auto``, and (c) pypiserver over a directory of the same
wheel files, installed into a throwaway virtual environment and run with the best it offers
(the cached-dir backend; waitress, which its ``--server auto`` prefers). ``wrk`` then loads
each with 64 connections on ``/simple/<project>/``, rotating over every project, with pip's
Accept header. Prints one line.

    python benchmarks/serve_index.py [--duration 10] [--projects 1000] [--servers builtin,nginx]

``--servers`` picks which of the three to load (all by default); a reduced run, such as
``--duration 5 --projects 200 --servers builtin``, compares two versions of the built-in
server in a minute. Needs wrk (``apt-get install wrk``), nginx (``apt-get install nginx``) and
pip access to an index for pypiserver. Access logs are off on all three.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.publish.servers import free_port, start_nginx  # noqa: E402

from wheelfarm.publish.tree import gzip_bytes  # noqa: E402

PIP_ACCEPT = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)
WHEELS = 12
TAGS = ["cp311-cp311-linux_armv7l", "cp312-cp312-linux_aarch64", "py3-none-any"]


def write_trees(base: Path, projects: int) -> tuple[Path, Path, list[str]]:
    """The published tree (pages + files) and pypiserver's flat package directory."""
    www = base / "www"
    packages = base / "packages"
    packages.mkdir(parents=True)
    names = [f"project-{i:04d}" for i in range(projects)]
    for index, name in enumerate(names):
        dist = name.replace("-", "_")
        files_dir = www / "files" / name
        files_dir.mkdir(parents=True)
        links, entries = [], []
        for n in range(WHEELS):
            filename = f"{dist}-1.{n // 3}.{n % 3}-{TAGS[n % len(TAGS)]}.whl"
            content = f"wheel {filename}\n".encode()
            (files_dir / filename).write_bytes(content)
            (packages / filename).write_bytes(content)
            digest = hashlib.sha256(content).hexdigest()
            url = f"/files/{name}/{filename}"
            links.append(
                f'    <a href="{url}#sha256={digest}" data-requires-python="&gt;=3.9" '
                f'data-dist-info-metadata="sha256={digest}">{filename}</a><br/>'
            )
            entries.append(
                f'{{"filename": "{filename}", "url": "{url}", "hashes": {{"sha256": "{digest}"}}, '
                f'"requires-python": ">=3.9", "core-metadata": {{"sha256": "{digest}"}}}}'
            )
        page = www / "simple" / name
        page.mkdir(parents=True)
        (page / "index.html").write_text(
            '<!DOCTYPE html>\n<html>\n  <head>\n    <meta name="pypi:repository-version" '
            f'content="1.1">\n    <title>Links for {name}</title>\n  </head>\n  <body>\n'
            f"<!--SERIAL {index + 1}-->\n"  # as the publisher writes it: X-PyPI-Last-Serial
            f"    <h1>Links for {name}</h1>\n" + "\n".join(links) + "\n  </body>\n</html>\n"
        )
        (page / "index.json").write_text(
            f'{{"meta": {{"api-version": "1.1", "_last-serial": {index + 1}}}, "name": "{name}", '
            '"files": [' + ", ".join(entries) + "]}\n"
        )
        for variant in ("index.html", "index.json"):  # the publisher's gzip siblings
            (page / f"{variant}.gz").write_bytes(gzip_bytes((page / variant).read_bytes()))
    (www / "404.html").write_text("<!DOCTYPE html><title>Not found</title>\n")
    return www, packages, names


def wait_for(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with status {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not listen on port {port}")


def wrk(port: int, script: Path, duration: int, check_url: str) -> float:
    """Requests/s from wrk, after checking that the first page is what it should be."""
    check = subprocess.run(
        ["curl", "-sf", "-o", "/dev/null", "-H", f"Accept: {PIP_ACCEPT}", check_url],
        check=False,
    )
    if check.returncode != 0:
        raise SystemExit(f"{check_url} did not answer 200 (curl status {check.returncode})")
    # A long timeout: a slow server's answers still count, rather than becoming socket errors.
    command = ["wrk", "-t2", "-c64", f"-d{duration}s", "--timeout", "30s", "-s", str(script)]
    result = subprocess.run(
        [*command, f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True
    )
    if "Non-2xx" in result.stdout or "Socket errors" in result.stdout:
        raise SystemExit(f"wrk saw errors on port {port}:\n{result.stdout}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    if found is None:
        raise SystemExit(f"no Requests/sec in wrk's output:\n{result.stdout}")
    return float(found.group(1))


def wrk_script(path: Path, names: list[str], gzip: bool = False) -> None:
    """A wrk script that asks for every project's simple page in turn, as pip would (with
    ``Accept-Encoding: gzip`` when ``gzip``, as pip sends it)."""
    listed = ", ".join(f'"{name}"' for name in names)
    encoding = 'wrk.headers["Accept-Encoding"] = "gzip, deflate"\n' if gzip else ""
    path.write_text(
        f"local names = {{{listed}}}\n"
        "local i = 0\n"
        f'wrk.headers["Accept"] = "{PIP_ACCEPT}"\n'
        f"{encoding}"
        "request = function()\n"
        "  i = i + 1\n"
        '  return wrk.format("GET", "/simple/" .. names[(i % #names) + 1] .. "/")\n'
        "end\n"
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=20)


def bench_builtin(www: Path, script: Path, duration: int) -> float:
    port = free_port()
    env = {
        **os.environ,
        "WHEELFARM_UPSTREAM": "https://index.example.org/simple/",
        "WHEELFARM_CONFIG": os.devnull,
    }
    command = [sys.executable, "-m", "wheelfarm", "serve", "--root", str(www), "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    try:
        wait_for(port, process, "wheelfarm serve")
        return wrk(port, script, duration, f"http://127.0.0.1:{port}/simple/project-0000/")
    finally:
        stop(process)


def bench_nginx(base: Path, www: Path, script: Path, duration: int) -> float:
    server = start_nginx(base / "nginx", www, free_port(), workers="auto", access_log=False)
    try:
        port = int(server.url.rsplit(":", 1)[1])
        return wrk(port, script, duration, f"{server.url}/simple/project-0000/")
    finally:
        server.stop()


def bench_pypiserver(base: Path, packages: Path, script: Path, duration: int) -> float:
    venv = base / "pypiserver-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "pypiserver[cache]", "waitress"],
        check=True,
    )
    port = free_port()
    command = [
        str(venv / "bin" / "pypi-server"),
        "run",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--server",
        "auto",  # bottle's pick: waitress, installed above
        "--backend",
        "cached-dir",
        "--disable-fallback",
        "--log-stream",
        "none",
        str(packages),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(port, process, "pypi-server")
        return wrk(port, script, duration, f"http://127.0.0.1:{port}/simple/project-0000/")
    finally:
        stop(process)


SERVERS = ("builtin", "nginx", "pypiserver")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per server")
    parser.add_argument("--projects", type=int, default=1000)
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="comma-separated, from: " + ", ".join(SERVERS) + " (default: all)",
    )
    parser.add_argument(
        "--gzip",
        action="store_true",
        help="ask for gzip (Accept-Encoding), served from the pages' .gz siblings",
    )
    args = parser.parse_args()
    servers = [name.strip() for name in args.servers.split(",") if name.strip()]
    unknown = sorted(set(servers) - set(SERVERS))
    if unknown or not servers:
        parser.error(f"--servers takes names from {', '.join(SERVERS)}, not {args.servers!r}")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (Debian/Ubuntu), then run again")
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as temp:
        base = Path(temp)
        www, packages, names = write_trees(base, args.projects)
        script = base / "rotate.lua"
        wrk_script(script, names, args.gzip)
        if "builtin" in servers:
            figures["built-in"] = bench_builtin(www, script, args.duration)
        if "nginx" in servers:
            figures["nginx"] = bench_nginx(base, www, script, args.duration)
        if "pypiserver" in servers:
            figures["pypiserver"] = bench_pypiserver(base, packages, script, args.duration)
    shown = ", ".join(f"{name} {rate:.0f} req/s" for name, rate in figures.items())
    encoding = "gzip" if args.gzip else "identity"
    line = f"simple pages ({encoding}), {args.projects} projects, 64 connections: {shown}"
    if "built-in" in figures and "pypiserver" in figures:
        line += f" (built-in = {figures['built-in'] / figures['pypiserver']:.1f}x pypiserver)"
    print(line)


if __name__ == "__main__":
    main()
