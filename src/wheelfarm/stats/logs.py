"""Ingest web server access logs in the combined format (nginx's and Apache's default).

``wheelfarm logs ingest FILE`` reads each line, turns the ones that are hits into rows and writes
them in batches (:func:`wheelfarm.stats.record.write_hits`). A line's key is a hash of its time,
client, request, status, size and user agent, so ingesting a file again, or two files that
overlap, counts each line once. Lines that are not hits, or that cannot be read, are skipped and
counted by reason; nothing in a line makes the ingester fail.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from wheelfarm.stats.agents import MAX_AGENT_LENGTH, Agents
from wheelfarm.stats.hits import DAY, ClientHasher, Hit, classify, hit_key, range_key
from wheelfarm.stats.record import prune, write_hits

__all__ = ["MAX_LINE", "IngestReport", "LogIngester"]

#: Longer lines are skipped (a real access log line is well under this).
MAX_LINE = 16384
#: Timestamps further ahead of the clock than this are skipped.
FUTURE_SLACK = 300.0

_LINE = re.compile(
    r'(?P<addr>[^ ]+) [^ ]+ [^ ]+ \[(?P<time>[^\]]+)\] "(?P<request>(?:[^"\\]|\\.)*)" '
    r'(?P<status>\d{3}) (?P<size>\d+|-)(?: "(?P<referer>(?:[^"\\]|\\.)*)" '
    r'"(?P<agent>(?:[^"\\]|\\.)*)")?'
)
_ESCAPE = re.compile(r'\\x([0-9A-Fa-f]{2})|\\(["\\])')
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_REQUEST = re.compile(r"(?P<method>[A-Z]{1,16}) (?P<target>/[^ ]*) HTTP/\d(?:\.\d)?")


@dataclass
class IngestReport:
    """What an ingest did: lines read, hits new and already counted, lines skipped by reason."""

    lines: int = 0
    hits: int = 0
    duplicates: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, object]:
        return {
            "lines": self.lines,
            "hits": self.hits,
            "duplicates": self.duplicates,
            "skipped": dict(sorted(self.skipped.items())),
        }


def _unescape(text: str) -> str:
    """nginx writes ``"`` as ``\\x22``; Apache as ``\\"``."""
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda m: chr(int(m[1], 16)) if m[1] else m[2], text)


class LogIngester:
    """Turn lines into hits and write them, ``batch`` hits per transaction."""

    def __init__(
        self,
        engine: Engine,
        secret: bytes,
        *,
        keep_days: int = 90,
        batch: int = 50_000,
        now: float | None = None,
    ) -> None:
        self.engine = engine
        self.keep_days = keep_days
        self.batch = batch
        self.report = IngestReport()
        self._now = now
        self._agents = Agents()
        self._clients = ClientHasher(secret)
        self._times: dict[str, float | None] = {}
        self._known_agents: set[int] = set()
        self._pending: list[Hit] = []

    def feed(self, lines: Iterable[bytes]) -> IngestReport:
        """Read lines (bytes, with or without their newline); write full batches as they fill."""
        for raw in lines:
            self.report.lines += 1
            found = self.hit_of(raw)
            if isinstance(found, str):
                self.report.skipped[found] += 1
                continue
            self._pending.append(found)
            if len(self._pending) >= self.batch:
                self.flush()
        return self.report

    def flush(self) -> None:
        """Write the hits read so far (one transaction), and prune raw hits past the kept days."""
        hits, self._pending = self._pending, []
        if not hits:
            return
        try:
            with self.engine.begin() as connection:
                new = write_hits(connection, hits, self._known_agents)
                prune(connection, self.keep_days, int(self._clock() // DAY))
        except BaseException:
            self._known_agents.clear()
            raise
        self.report.hits += new
        self.report.duplicates += len(hits) - new

    def _clock(self) -> float:
        return time.time() if self._now is None else self._now

    def _time(self, text: str) -> float | None:
        found = self._times.get(text, -1.0)
        if found == -1.0:
            try:
                found = datetime.strptime(text, "%d/%b/%Y:%H:%M:%S %z").timestamp()
            except ValueError:
                found = None
            if len(self._times) > 100_000:
                self._times.clear()
            self._times[text] = found
        return found

    def hit_of(self, raw: bytes) -> Hit | str:
        """The hit one line is, or the reason it is skipped.

        Long: one check after the other, each with its own reason; apart, the order is lost.
        """
        if len(raw) > MAX_LINE:
            return "line too long"
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line.strip():
            return "empty line"
        if _CONTROL.search(line):
            return "control characters"
        match = _LINE.match(line)
        if match is None:
            return "not the combined log format"
        request = _REQUEST.fullmatch(_unescape(match["request"]))
        if request is None:
            return "malformed request"
        at = self._time(match["time"])
        if at is None:
            return "malformed time"
        if at > self._clock() + FUTURE_SLACK:
            return "time in the future"
        day = int(at // DAY)
        if day < int(self._clock() // DAY) - self.keep_days:
            return "older than the kept raw hits"
        user_agent = _unescape(match["agent"] or "")[:MAX_AGENT_LENGTH]
        agent = self._agents(user_agent)
        status = int(match["status"])
        found = classify(request["method"], request["target"], status, agent)
        if isinstance(found, str):
            return found
        kind, project, version, filename, target = found
        client = self._clients(match["addr"], day)
        if status == 206 and filename is not None:
            key = range_key(day, client, agent.key, filename)
        else:
            key = hit_key(int(at), client, request["target"], status, match["size"], agent.key)
        return Hit(key, day, at, kind, project, version, filename, target, client, agent)
