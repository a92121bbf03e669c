"""Ingest web server access logs in the combined format (nginx's and Apache's default).

``wheelfarm logs ingest FILE`` reads each line, turns the ones that are hits into rows and writes
them in batches (:func:`wheelfarm.stats.record.write_hits`). A line's key is a hash of its time,
client, request, status, size and user agent, so ingesting a file again, or two files that
overlap, counts each line once. Lines that are not hits, or that cannot be read, are skipped and
counted by reason; nothing in a line makes the ingester fail.

Speed (issue 15 asks for 100,000 lines/s): a line is read by one regular expression that only
matches the plain case (no control characters, no escapes in the request, the fixed time
format); anything else takes the careful path, which finds the reason it is skipped. What a
line's parts mean is worked out once per distinct value and kept: the user agent (linehaul and
crawlerdetect cost tens of microseconds), the request (its kind, project, file), the minute of
its time (``strptime`` costs microseconds), the client's daily hash.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from wheelfarm.stats.agents import MAX_AGENT_LENGTH, Agent, Agents
from wheelfarm.stats.hits import DAY, Classifier, ClientHasher, Hit, range_key
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

# The plain line, in one match: every part as the careful path would read it, minus the cases
# that need its checks (a control character anywhere, an escape in the request, an odd time).
# A quoted field is one run of characters: nginx writes a quote in it as \x22; Apache's \" and
# a field ending in a backslash fail the look-behind and take the careful path. (Measured on the
# benchmark's lines: 3.6 us a match with the alternation ``(?:[^"\\]|\\.)*``, 2.2 without.)
_TEXT = r'[^"\x00-\x1f\x7f]*(?<!\\)'
_PLAIN = re.compile(
    r"([^ \x00-\x1f\x7f]+) [^ \x00-\x1f\x7f]+ [^ \x00-\x1f\x7f]+ "
    r"\[(\d\d/[A-Z][a-z][a-z]/\d{4}:\d\d:\d\d):(\d\d)( [+-]\d{4})\] "
    r'"([A-Z]{1,16}) (/[^ "\\\x00-\x1f\x7f]*) HTTP/\d(?:\.\d)?" (\d{3}) (\d+|-) '
    rf'"{_TEXT}" "({_TEXT})"'
    r"[^\x00-\x08\x0a-\x1f\x7f]*[\r\n]*\Z"
)
#: How many distinct values each cache keeps before it starts again.
_CACHED = 100_000


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
    """Turn lines into hits and write them, ``batch`` hits per transaction.

    A big batch counts more hits into each ``stats_daily`` row before it is written (measured
    on a day's log: 50,000 hits a batch, 21,600 lines per CPU-second; 300,000, 25,300), at
    about 250 bytes of memory a hit.
    """

    def __init__(
        self,
        engine: Engine,
        secret: bytes,
        *,
        keep_days: int = 90,
        batch: int = 200_000,
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
        self._escaped_agents: dict[str, Agent] = {}
        self._classify = Classifier()
        self._known_agents: set[int] = set()
        self._batch_agents: dict[int, Agent] = {}
        self._pending: list[Hit] = []

    def feed(self, lines: Iterable[bytes]) -> IngestReport:
        """Read lines (bytes, with or without their newline); write full batches as they fill."""
        report, hit_of, batch = self.report, self.hit_of, self.batch
        for raw in lines:  # the pending list is looked up each time: --follow flushes when idle
            report.lines += 1
            found = hit_of(raw)
            if isinstance(found, str):
                report.skipped[found] += 1
                continue
            self._pending.append(found)
            if len(self._pending) >= batch:
                self.flush()
        return report

    def flush(self) -> None:
        """Write the hits read so far (one transaction), and prune raw hits past the kept days."""
        hits, self._pending = self._pending, []
        agents, self._batch_agents = self._batch_agents, {}
        if not hits:
            return
        try:
            with self.engine.begin() as connection:
                new = write_hits(connection, hits, agents, self._known_agents)
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
            if len(self._times) > _CACHED:
                self._times.clear()
            self._times[text] = found
        return found

    def _agent(self, escaped: str) -> Agent:
        """The agent of a user agent field as the log has it (escaped), parsed once."""
        found = self._escaped_agents.get(escaped)
        if found is None:
            found = self._agents(_unescape(escaped)[:MAX_AGENT_LENGTH])
            if len(self._escaped_agents) > _CACHED:
                self._escaped_agents.clear()
            self._escaped_agents[escaped] = found
        return found

    def hit_of(self, raw: bytes) -> Hit | str:
        """The hit one line is, or the reason it is skipped."""
        if len(raw) > MAX_LINE:
            return "line too long"
        line = raw.decode("utf-8", "replace")
        match = _PLAIN.match(line)
        if match is None:
            return self._careful_hit_of(line.rstrip("\r\n"))
        address, minute, second, zone, method, target, status_text, size, escaped = match.groups()
        start = self._times.get(minute + zone, -1.0)  # a minute never spans two days
        if start == -1.0:
            start = self._times[minute + zone] = self._time(f"{minute}:00{zone}")
        seconds = int(second)
        if start is None or seconds > 59:
            return "malformed time"
        at = start + seconds
        now = self._clock()
        if at > now + FUTURE_SLACK:
            return "time in the future"
        day = int(at // DAY)
        if day < int(now // DAY) - self.keep_days:
            return "older than the kept raw hits"
        return self._hit(at, day, address, method, target, int(status_text), size, escaped)

    def _careful_hit_of(self, line: str) -> Hit | str:
        """:meth:`hit_of` for a line that is not plain: one check after the other, each with
        its own reason; apart, the order is lost."""
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
        method, target = request["method"], request["target"]
        status = int(match["status"])
        return self._hit(
            at, day, match["addr"], method, target, status, match["size"], match["agent"] or ""
        )

    def _hit(
        self,
        at: float,
        day: int,
        address: str,
        method: str,
        target: str,
        status: int,
        size: str,
        escaped_agent: str,
    ) -> Hit | str:
        """The hit of a line read (its time checked), or why it is not one."""
        agent = self._escaped_agents.get(escaped_agent)  # the caches' lookups, inlined
        if agent is None:
            agent = self._agent(escaped_agent)
        found = self._classify(method, target, status, agent.is_installer)
        if isinstance(found, str):
            return found
        kind, project, version, filename, target_tag = found
        client = self._clients(address, day)
        if status == 206 and filename is not None:
            key = range_key(day, client, agent.key, filename)
        else:  # hit_key(int(at), client, target, status, size, agent.key), inlined
            text = f"{int(at)}\x1f{client}\x1f{target}\x1f{status}\x1f{size}\x1f{agent.key}"
            digest = hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8).digest()
            key = int.from_bytes(digest, "big", signed=True)
        self._batch_agents[agent.key] = agent
        return Hit(key, day, at, kind, project, version, filename, target_tag, client, agent.key)
