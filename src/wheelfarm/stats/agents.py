"""What a user agent says about the client: linehaul's parse, plus a bot flag.

linehaul is the parser the upstream index's own analytics use: it reads the JSON that pip, uv
and the other installers put into their user agent (installer, Python, distro, libc, CPU, CI).
A user agent linehaul deliberately ignores, or one it cannot read that crawlerdetect calls a
crawler, is a bot. Parsing costs tens of microseconds, and a server sees few distinct user
agents, so each is parsed once per process (:class:`Agents`).
"""

from __future__ import annotations

import hashlib
from dataclasses import astuple, dataclass
from typing import Any

from crawlerdetect import CrawlerDetect
from linehaul.ua.parser import UnknownUserAgentError, parse

__all__ = ["AGENT_COLUMNS", "INSTALLERS", "MAX_AGENT_LENGTH", "Agent", "Agents", "agent_key"]

#: Clients that resolve requirements: a fetch of a simple page by one of them is a search.
INSTALLERS = frozenset(
    {"pip", "uv", "poetry", "pdm", "pex", "setuptools", "distribute", "conda", "Bazel"}
)

#: Longer user agents are cut to this length before anything reads them.
MAX_AGENT_LENGTH = 4096

_FIELD_LIMITS = (64, 64, 64, 16, 128, 64, 32, 64)

AGENT_COLUMNS = (
    "agent",
    "installer",
    "installer_version",
    "implementation",
    "python",
    "distro",
    "libc",
    "arch",
    "os",
    "ci",
    "bot",
)


@dataclass(frozen=True, slots=True)
class Agent:
    """The parsed fields of one user agent (None: not said); the row of ``stats_agents``."""

    key: int
    installer: str | None = None
    installer_version: str | None = None
    implementation: str | None = None
    python: str | None = None  # major.minor
    distro: str | None = None  # name and version
    libc: str | None = None
    arch: str | None = None
    os: str | None = None
    ci: bool | None = None
    bot: bool = False

    @property
    def is_installer(self) -> bool:
        return not self.bot and self.installer in INSTALLERS

    def row(self) -> dict[str, Any]:
        return dict(zip(AGENT_COLUMNS, astuple(self), strict=True))


def agent_key(user_agent: str) -> int:
    """A signed 64-bit hash of the user agent string: the agent's key."""
    digest = hashlib.blake2b(user_agent.encode("utf-8", "replace"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _clean(value: object, limit: int) -> str | None:
    if value is None:
        return None
    text = "".join(c for c in str(value) if c.isprintable()).strip()
    return text[:limit] or None


def _minor(version: str | None) -> str | None:
    if not version:
        return None
    parts = version.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and parts[0].isdigit() else None


class Agents:
    """Parse user agents, each distinct string once."""

    def __init__(self, capacity: int = 65536) -> None:
        self._seen: dict[str, Agent] = {}
        self._capacity = capacity
        self._crawlers = CrawlerDetect()

    def __call__(self, user_agent: str) -> Agent:
        found = self._seen.get(user_agent)
        if found is None:
            found = self._parse(user_agent[:MAX_AGENT_LENGTH])
            if len(self._seen) >= self._capacity:
                self._seen.clear()
            self._seen[user_agent] = found
        return found

    def _parse(self, user_agent: str) -> Agent:
        key = agent_key(user_agent)
        try:
            parsed = parse(user_agent)
        except (UnknownUserAgentError, ValueError, TypeError, AttributeError):
            return Agent(key, bot=bool(user_agent) and self._crawlers.is_crawler(user_agent))
        if parsed is None:  # linehaul's list of agents to ignore: crawlers and monitors
            return Agent(key, bot=True)
        installer = parsed.installer
        name = _clean(installer.name if installer else None, 64)
        implementation = parsed.implementation
        distro = parsed.distro
        distro_text = None
        if distro is not None and distro.name:
            distro_text = f"{distro.name} {distro.version or ''}".strip()
        libc = distro.libc if distro is not None else None
        libc_text = f"{libc.lib} {libc.version or ''}".strip() if libc and libc.lib else None
        python = parsed.python or (implementation.version if implementation else None)
        values = (
            name,
            installer.version if installer else None,
            implementation.name if implementation else None,
            _minor(python),
            distro_text,
            libc_text,
            parsed.cpu,
            parsed.system.name if parsed.system else None,
        )
        c = [_clean(v, n) for v, n in zip(values, _FIELD_LIMITS, strict=True)]
        bot = name not in INSTALLERS and bool(self._crawlers.is_crawler(user_agent))
        ci = parsed.ci if isinstance(parsed.ci, bool) else None
        return Agent(key, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], ci, bot)
