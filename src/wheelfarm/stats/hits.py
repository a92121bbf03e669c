"""What counts as a hit, and the row it becomes; the client's keyed, daily-changing hash.

A hit is one of four kinds:

- ``download``: a GET of a file under ``/files/<project>/`` answered 200 or 206. A range
  request (206) counts once per client (address and user agent), file and day: its key is
  made of those, so the store's unique key folds the others into it.
- ``search``: an installer's (pip, uv, poetry, pdm...) GET of ``/simple/<project>/``,
  answered 200 or 304.
- ``page``: a GET of the project page ``/project/<project>/``, 200 or 304.
- ``json``: a GET of the project's JSON ``/project/<project>/json``, 200 or 304.

No address is stored: :class:`ClientHasher` turns it into a 64-bit keyed hash whose key is
derived from a secret and the day, so the same client is one client within a day and cannot be
followed from one day to the next without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import NamedTuple

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from wheelfarm.errors import ConfigError

__all__ = [
    "DAY",
    "KINDS",
    "Classifier",
    "ClientHasher",
    "Hit",
    "HitRow",
    "classify",
    "hit_key",
    "load_secret",
    "range_key",
]

DAY = 86400
KINDS = ("download", "search", "page", "json")
SECRET_FILE = "stats-secret"
_MAX_NAME = 255
_MAX_FILENAME = 512


class Hit(NamedTuple):
    """One counted request: its ``stats_hits`` row, fields in the table's column order.

    ``hit`` is its unique key (see :func:`hit_key`); ``agent`` its user agent's key. A named
    tuple rather than a dataclass: ingesting a log makes one per line, and a tuple in column
    order goes to the database driver as it is (a frozen dataclass is slow to make and to hash,
    and grouping by it showed in the profile of issue 15).
    """

    hit: int
    day: int
    at: float
    kind: str
    project: str
    version: str | None
    filename: str | None
    target: str | None
    client: str
    agent: int


#: A :class:`Hit` as a plain tuple: what the log reader makes, and how hits travel to the writer's
#: process (pickling a named tuple costs twice as much: measured 2.6 against 1.2 us a hit).
HitRow = tuple[int, int, float, str, str, str | None, str | None, str | None, str, int]


def _signed(digest: bytes) -> int:
    return int.from_bytes(digest, "big", signed=True)


def hit_key(*parts: object) -> int:
    """A signed 64-bit hash of the parts: the same request seen twice has the same key."""
    text = "\x1f".join(str(p) for p in parts)
    return _signed(hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8).digest())


def range_key(day: int, client: str, agent: int, filename: str) -> int:
    """The key of every range request of one file by one client (address and user agent) on
    one day: everything the hit's counts depend on, so which of them comes first is moot."""
    return hit_key("range", day, client, agent, filename)


def load_secret(data_dir: Path) -> bytes:
    """The secret the daily client keys derive from, made (mode 0600) on first use."""
    path = data_dir / SECRET_FILE
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            secret = path.read_bytes()
        else:
            secret = secrets.token_bytes(32)
            with os.fdopen(fd, "wb") as handle:
                handle.write(secret)
    except OSError as error:
        raise ConfigError("data_dir", str(data_dir), f"cannot keep {path}: {error}") from error
    if len(secret) < 16:
        raise ConfigError("data_dir", str(data_dir), f"{path} is too short to be a secret")
    return secret


class ClientHasher:
    """Addresses to 16 hex digits, with a key that changes each day (derived from ``secret``)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._keys: dict[int, hashlib.blake2b] = {}
        self._seen: dict[tuple[int, str], str] = {}

    def __call__(self, address: str, day: int) -> str:
        found = self._seen.get((day, address))
        if found is None:
            found = self.digest(address.encode(), day)
            if len(self._seen) > 200_000:
                self._seen.clear()
            self._seen[(day, address)] = found
        return found

    def digest(self, address: bytes, day: int) -> str:
        """The hash of ``address`` (as bytes) on ``day``, not kept (for callers that keep it)."""
        hasher = self.hasher(day).copy()
        hasher.update(address)
        return hasher.hexdigest()

    def hasher(self, day: int) -> hashlib.blake2b:
        """The keyed hash of ``day`` before anything is hashed with it: copied for each address
        (a copy spares hashing the key again, a third of a hash of an address)."""
        hasher = self._keys.get(day)
        if hasher is None:
            key = hmac.digest(self._secret, f"day {day}".encode(), "sha256")
            hasher = hashlib.blake2b(key=key, digest_size=8)
            if len(self._keys) > 64:
                self._keys.clear()
            self._keys[day] = hasher
        return hasher


def _file_parts(project: str, filename: str) -> tuple[str | None, str] | None:
    """(version, target) of a published file: a wheel's tag triple, or ``source``."""
    try:
        if filename.endswith(".whl"):
            _, version, _, tags = parse_wheel_filename(filename)
            triple = filename[:-4].split("-")[-3:]
            del tags
            return str(version), "-".join(triple)
        name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    del name
    return str(version), "source"


def classify(
    method: str, path: str, status: int, installer: bool
) -> tuple[str, str, str | None, str | None, str | None] | str:
    """(kind, project, version, filename, target) of a request, or why it is not a hit.

    ``installer``: whether the user agent is an installer's (``Agent.is_installer``), the
    one thing about it that matters here; so the answer can be kept per distinct request.
    """
    if method != "GET":
        return "not a GET"
    parts = path.split("?", 1)[0].split("/")
    if len(parts) < 3 or parts[0] != "":
        return "not a counted path"
    head, name = parts[1], parts[2]
    if not name or len(name) > _MAX_NAME:
        return "not a counted path"
    project = canonicalize_name(name)
    rest = parts[3:]
    if head == "files" and len(rest) == 1 and status in (200, 206):
        filename = rest[0]
        found = _file_parts(project, filename) if len(filename) <= _MAX_FILENAME else None
        if found is None:
            return "not a published file name"
        return "download", project, found[0], filename, found[1]
    if status not in (200, 304):
        return "not a counted status"
    if head == "simple" and rest in ([""], ["index.html"], ["index.json"]):
        return ("search", project, None, None, None) if installer else "not an installer"
    if head == "project" and rest in ([""], ["index.html"]):
        return "page", project, None, None, None
    if head == "project" and rest in (["json"], ["json", ""], ["json", "index.json"]):
        return "json", project, None, None, None
    return "not a counted path"


Classified = tuple[str, str, str | None, str | None, str | None] | str


class Classifier:
    """:func:`classify`, once per distinct request: a server is asked for the same pages and
    files over and over, and reading a wheel's name with packaging costs microseconds."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._seen: dict[tuple[str, str, int, bool], Classified] = {}
        self._capacity = capacity

    def __call__(self, method: str, path: str, status: int, installer: bool) -> Classified:
        key = (method, path, status, installer)
        found = self._seen.get(key)
        if found is None:
            found = classify(method, path, status, installer)
            if len(self._seen) >= self._capacity:
                self._seen.clear()
            self._seen[key] = found
        return found
