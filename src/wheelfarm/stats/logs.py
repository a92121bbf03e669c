"""Ingest web server access logs in the combined format (nginx's and Apache's default).

``wheelfarm logs ingest FILE`` reads each line, turns the ones that are hits into rows and writes
them in batches (:func:`wheelfarm.stats.record.write_hits`). A line's key is a hash of its time,
client, request, status, size and user agent, so ingesting a file again, or two files that
overlap, counts each line once. Lines that are not hits, or that cannot be read, are skipped and
counted by reason; nothing in a line makes the ingester fail.

Speed (issue 15 asks for 100,000 lines/s): lines are read as bytes; one regular expression
matches the head of the plain case (ASCII, no control characters, no escapes in the request,
the fixed time format) and the rest of the line, the user agent, is looked up; anything else
takes the careful path, which finds the reason it is skipped. What a line's parts mean is worked
out once per distinct value and kept: the user agent (linehaul and crawlerdetect cost tens of
microseconds), the request (its kind, project, file), the second of its time (``strptime``
costs microseconds), the client's daily hash.
"""

from __future__ import annotations

import gc
import hashlib
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import Engine

from wheelfarm.stats.agents import MAX_AGENT_LENGTH, Agent, Agents
from wheelfarm.stats.hits import DAY, Classifier, ClientHasher, Hit, HitRow, range_key
from wheelfarm.stats.record import prune, write_hits
from wheelfarm.stats.writer import ChildWriter, StoreRecipe

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

# The plain line, read as bytes in two parts. The head, one match: every part as the careful
# path would read it, minus the cases that need its checks (a control character, anything but
# ASCII, an escape in the request, an odd time). The tail (the user agent, as the log has it, and
# what follows it) is looked up: a server sees few distinct ones, so reading one (its checks, its
# unescaping, linehaul) is done once. A quoted field is one run of characters: nginx writes a
# quote in it as \x22; Apache's \" and a field ending in a backslash fail the look-behind and
# take the careful path. (Measured on the benchmark's lines, 710 bytes each: one match of the
# whole decoded line 3.1 us, of the bytes head 1.6.)
_TEXT = r'[^"\x00-\x1f\x7f]*(?<!\\)'
_PLAIN = re.compile(
    rb"([!-~]+) [!-~]+ [!-~]+ "
    rb"\[(\d\d/[A-Z][a-z][a-z]/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "
    rb'"([A-Z]{1,16}) (/[!#-\[\]-~]*) HTTP/\d(?:\.\d)?" (\d{3}) (\d+|-) ' + f'"{_TEXT}" "'.encode()
)
_PLAIN_TAIL = re.compile(rf'({_TEXT})"[^\x00-\x08\x0a-\x1f\x7f]*[\r\n]*\Z')
#: How many distinct values each cache keeps before it starts again.
_CACHED = 100_000
# A request's (kind, project, version, filename, target, whether a range), or why not a hit.
_Request = tuple[str, str, str | None, str | None, str | None, bool] | str
# A plain tail's (agent, its key, whether an installer's), or False: not plain.
_Tail = tuple[Agent, int, bool] | Literal[False]


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
    on a day's log: 50,000 hits a batch, 21,600 lines per CPU-second; 300,000, 25,300; with
    this reader, 200,000, 43,700; 1,000,000, 51,400), at about 250 bytes of memory a hit. With
    the child writer and numpy's counts, 200,000 a batch made 1,410,000 ``stats_daily`` upserts
    of the benchmark's 1,000,000 lines and 500,000 made 780,000: 47,600 against 61,800 lines
    per CPU-second, 29,200 against 52,500 lines/s by the clock (the same run, load average 5
    on two cores); the reader's peak memory grew by 200 MB, and the child holds a batch too.
    """

    def __init__(
        self,
        engine: Engine,
        secret: bytes,
        *,
        keep_days: int = 90,
        batch: int = 500_000,
        now: float | None = None,
        child: bool = False,
        part: int = 50_000,
    ) -> None:
        """``child``: write in a child process (:mod:`wheelfarm.stats.writer`) while this one
        reads on, sent ``part`` hits at a time; :meth:`close` ends it."""
        self.engine = engine
        self.keep_days = keep_days
        self.batch = batch
        self.part = part
        self.report = IngestReport()
        self._now = now
        self._agents = Agents()
        self._clients = ClientHasher(secret)
        self._times: dict[str, float | None] = {}
        self._escaped_agents: dict[str, Agent] = {}
        self._tails: dict[bytes, _Tail] = {}
        self._stamps: dict[bytes, tuple[int, int]] = {}
        self._requests: dict[tuple[bytes, bytes, bytes, bool], _Request] = {}
        self._client_keys: dict[tuple[int, bytes], tuple[str, bytes]] = {}
        self._classify = Classifier()
        self._known_agents: set[int] = set()
        self._batch_agents: dict[int, Agent] = {}
        self._pending: list[HitRow] = []
        self._uncollected = 0  # hits sent since the young objects were last collected
        self._writer: ChildWriter | None = None
        if child:
            url = engine.url.render_as_string(hide_password=False)
            self._writer = ChildWriter(StoreRecipe(url, keep_days, now))

    def feed(self, lines: Iterable[bytes]) -> IngestReport:
        """Read lines (bytes, with or without their newline); write full batches as they fill."""
        report, skipped = self.report, self.report.skipped
        batch = self.batch if self._writer is None else min(self.batch, self.part)
        # The cycle collector is off while lines are read (a batch makes hundreds of thousands
        # of tuples, none in a cycle: the collections they set off cost a fifth of an ingest),
        # and runs on the young generations once a batch is sent: a full collection went over
        # the caches (0.3 s a batch), one a part over the part's hits, alive until sent (20 to
        # 55 ms a part of 50,000).
        collecting = gc.isenabled()
        gc.disable()
        read = 0
        try:
            for found in self._read(lines):
                read += 1
                if found.__class__ is str:
                    skipped[found] += 1
                    continue
                pending = self._pending  # looked up each time: --follow flushes when idle
                pending.append(found)  # type: ignore[arg-type]  # not a str: a HitRow
                if len(pending) >= batch:
                    self._send(end=False)
        finally:
            report.lines += read
            if collecting:
                gc.enable()
        return report

    def hit_of(self, raw: bytes) -> Hit | str:
        """The hit one line is, or the reason it is skipped."""
        found = next(self._read((raw,)))
        return found if isinstance(found, str) else Hit._make(found)

    def _read(self, lines: Iterable[bytes]) -> Iterator[HitRow | str]:
        """The hit each line is, or the reason it is skipped.

        One loop with the plain line's path inlined, its names local: per plain line one match
        and a lookup per part (the time, the user agent, the request, the client), one tuple
        made (measured: a function call per part cost more than all the lookups).
        """
        plain, times, tails, requests = _PLAIN.match, self._stamps, self._tails, self._requests
        clients, batch_agents, fixed = self._client_keys, self._batch_agents, self._now
        blake2b, from_bytes = hashlib.blake2b, int.from_bytes
        clock = time.time
        for raw in lines:
            match = plain(raw) if len(raw) <= MAX_LINE else None
            if match is None:
                yield self._careful_hit_of_bytes(raw)
                continue
            tail = tails.get(raw[match.end() :])
            if tail is None:
                tail = self._tail(raw[match.end() :])
            if not tail:
                yield self._careful_hit_of_bytes(raw)
                continue
            agent, agent_key, installer = tail
            address, stamp, method, target, status, size = match.groups()
            when = times.get(stamp)
            if when is None:
                read = self._stamp(stamp)
                if isinstance(read, str):
                    yield read
                    continue
                when = read
            at, day = when
            now = clock() if fixed is None else fixed
            if at > now + FUTURE_SLACK:
                yield "time in the future"
                continue
            if day < (now // DAY) - self.keep_days:
                yield "older than the kept raw hits"
                continue
            found = requests.get((method, target, status, installer))
            if found is None:
                found = self._request(method, target, status, installer)
            if isinstance(found, str):
                yield found
                continue
            kind, project, version, filename, target_tag, ranged = found
            client = clients.get((day, address))
            if client is None:
                client = self._client(day, address)
            if ranged and filename is not None:
                key = range_key(day, client[0], agent_key, filename)
            else:  # hit_key(int(at), client, target, status, size, agent.key), inlined
                text = b"%d\x1f%b\x1f%b\x1f%b\x1f%b\x1f%d" % (
                    at,
                    client[1],
                    target,
                    status,
                    size,
                    agent_key,
                )
                key = from_bytes(blake2b(text, digest_size=8).digest(), "big", signed=True)
            batch_agents[agent_key] = agent
            # A plain tuple (a HitRow): what the driver and the pickle to the writer want.
            yield (
                key,
                day,
                float(at),
                kind,
                project,
                version,
                filename,
                target_tag,
                client[0],
                agent_key,
            )

    def flush(self) -> None:
        """Write the hits read so far (one transaction a batch), and prune raw hits past the
        kept days; returns when they are written."""
        self._send()
        self._settle()

    def close(self) -> None:
        """End the child process, if there is one (after :meth:`flush`)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> LogIngester:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _send(self, end: bool = True) -> None:
        """Write the hits read so far: here, or in the child, a batch in parts (``end``: this
        part ends its batch, as it does when the batch is full; why parts: :mod:`.writer`)."""
        hits, self._pending = self._pending, []
        agents = dict(self._batch_agents)  # cleared in place: :meth:`_read` holds it
        self._batch_agents.clear()
        if self._writer is None:
            if hits:
                self._write_here(hits, agents)
        else:
            for count, new in self._writer.send(hits, agents, end, self.batch, self.part):
                self._counted(count, new)
        self._uncollected += len(hits)
        if not gc.isenabled() and (end or self._uncollected >= self.batch):  # off in feed()
            gc.collect(1)
            self._uncollected = 0

    def _settle(self) -> None:
        """Wait for every part sent to the child, and count their batches."""
        for count, new in [] if self._writer is None else self._writer.wait():
            self._counted(count, new)

    def _write_here(self, hits: list[HitRow], agents: dict[int, Agent]) -> None:
        try:
            with self.engine.begin() as connection:
                new = write_hits(connection, hits, agents, self._known_agents)
                prune(connection, self.keep_days, int(self._clock() // DAY))
        except BaseException:
            self._known_agents.clear()
            raise
        self._counted(len(hits), new)

    def _counted(self, count: int, new: int) -> None:
        self.report.hits += new
        self.report.duplicates += count - new

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

    def _tail(self, tail: bytes) -> _Tail:
        """The agent of a plain line's tail (its user agent as the log has it, and what follows
        it), its key and whether it is an installer's; False when the tail is not plain."""
        match = _PLAIN_TAIL.match(tail.decode("utf-8", "replace"))
        found: _Tail = False
        if match is not None:
            agent = self._agent(match[1])
            found = (agent, agent.key, agent.is_installer)
        if len(self._tails) > _CACHED:
            self._tails.clear()
        self._tails[tail] = found
        return found

    def _stamp(self, stamp: bytes) -> tuple[int, int] | str:
        """(epoch second, day) of a plain line's time, or why it is skipped; the minute's start
        is worked out once (``strptime`` costs microseconds), a second of it once. The time's
        parts are where :data:`_PLAIN` put them (one group less to capture a line: 0.1 us)."""
        minute, second, zone = stamp[:17].decode(), stamp[18:20].decode(), stamp[21:].decode()
        start = self._time(f"{minute}:00 {zone}")  # a minute never spans two days
        seconds = int(second)
        if start is None or seconds > 59:
            return "malformed time"
        at = int(start) + seconds
        if len(self._stamps) > _CACHED:
            self._stamps.clear()
        found = self._stamps[stamp] = (at, at // DAY)
        return found

    def _request(self, method: bytes, target: bytes, status: bytes, installer: bool) -> _Request:
        """What a plain line's request is (:class:`Classifier`), and whether it is a range."""
        classified = self._classify(method.decode(), target.decode(), int(status), installer)
        found: _Request
        if isinstance(classified, str):
            found = classified
        else:
            kind, project, version, filename, target_tag = classified
            ranged = status == b"206" and filename is not None
            found = (kind, project, version, filename, target_tag, ranged)
        if len(self._requests) > _CACHED:
            self._requests.clear()
        self._requests[(method, target, status, installer)] = found
        return found

    def _client(self, day: int, address: bytes) -> tuple[str, bytes]:
        """The client's daily hash (:class:`ClientHasher`), as text and as bytes."""
        hasher = self._clients.hasher(day).copy()
        hasher.update(address)
        client = hasher.hexdigest()
        if len(self._client_keys) > 200_000:
            self._client_keys.clear()
        found = self._client_keys[(day, address)] = (client, client.encode())
        return found

    def _careful_hit_of_bytes(self, raw: bytes) -> Hit | str:
        if len(raw) > MAX_LINE:
            return "line too long"
        return self._careful_hit_of(raw.decode("utf-8", "replace").rstrip("\r\n"))

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
