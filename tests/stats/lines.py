"""Access log lines as nginx writes them, with real pip and uv user agents."""

from __future__ import annotations

import json
import time

PIP_AGENT = "pip/24.0 " + json.dumps(
    {
        "ci": None,
        "cpu": "x86_64",
        "distro": {
            "id": "bookworm",
            "libc": {"lib": "glibc", "version": "2.36"},
            "name": "Debian GNU/Linux",
            "version": "12",
        },
        "implementation": {"name": "CPython", "version": "3.11.2"},
        "installer": {"name": "pip", "version": "24.0"},
        "python": "3.11.2",
        "system": {"name": "Linux", "release": "6.1.0"},
    },
    separators=(",", ":"),
    sort_keys=True,
)
UV_AGENT = "uv/0.4.18 " + json.dumps(
    {
        "installer": {"name": "uv", "version": "0.4.18"},
        "python": "3.12.3",
        "implementation": {"name": "CPython", "version": "3.12.3"},
        "distro": {"name": "Ubuntu", "version": "24.04", "id": "noble", "libc": None},
        "system": {"name": "Linux", "release": "6.8.0"},
        "cpu": "aarch64",
        "openssl_version": None,
        "setuptools_version": None,
        "rustc_version": None,
        "ci": True,
    },
    separators=(",", ":"),
)
BROWSER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
BOT_AGENT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://bot.example.org/bot.html)"


def stamp(at: float) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(at))


def nginx_line(
    at: float,
    path: str,
    *,
    status: int = 200,
    agent: str = PIP_AGENT,
    client: str = "192.0.2.1",
    size: int = 1234,
    method: str = "GET",
) -> bytes:
    """One line of nginx's combined format; nginx writes a double quote as \\x22."""
    escaped = agent.replace("\\", "\\x5C").replace('"', "\\x22")
    return (
        f'{client} - - [{stamp(at)}] "{method} {path} HTTP/1.1" {status} {size} "-" "{escaped}"\n'
    ).encode()
