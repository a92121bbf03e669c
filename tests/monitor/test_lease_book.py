"""Heartbeats answered from the lease book: no query while it is fresh, the store otherwise.

The book is a reading of the open builds, trusted for a few seconds; the builder API's own
claims and results change it at once; an operator's command set elsewhere reaches heartbeats
at the next reading; a lease with less than half its length left is renewed in the store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from tests.monitor.conftest import Master
from wheelfarm.builder.client import MasterRefused
from wheelfarm.farm.lease_book import LeaseBook, OpenLease
from wheelfarm.farm.registry import add_builder, set_command
from wheelfarm.protocol import BuildReport, Health, Heartbeat
from wheelfarm.store.schema import jobs

LEASE = 300.0  # FarmConfig's default


@contextmanager
def queries(engine: Engine) -> Iterator[list[str]]:
    """The statements requests run on ``engine`` meanwhile, but for the token table's reading
    (:class:`~wheelfarm.farm.tokens.TokenCache`'s, every 2 s) and the presence writer's passes
    (every second, in their own thread): neither is the heartbeat's."""
    seen: list[str] = []

    def note(*args: Any) -> None:
        statement = args[2]
        if threading.current_thread().name != "presence-writer" and "token_hash" not in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _lease(master: Master) -> float | None:
    with master.engine.connect() as connection:
        expires = connection.execute(select(jobs.c.lease_expires)).scalar_one()
    return float(expires) if expires is not None else None


def test_a_heartbeat_answered_from_the_book_runs_no_query(master: Master) -> None:
    build = master.claim_a_build()
    master.book.read()
    master.clock.now += 100  # 200 s of the lease left: more than half
    with queries(master.engine) as ran:
        reply = master.builder().heartbeat(build, Heartbeat(health=Health(load=2.0)))
    assert (reply.command, ran) == ("continue", [])
    master.flush()  # the renewal was noted, and is written with the others
    assert _lease(master) == master.clock() + LEASE


def test_a_lease_with_less_than_half_left_is_renewed_in_the_store_first(master: Master) -> None:
    build = master.claim_a_build()
    master.book.read()
    master.clock.now += 250  # 50 s left
    with queries(master.engine) as ran:
        assert master.builder().heartbeat(build, Heartbeat()).command == "continue"
    assert ran  # the store was asked and written
    assert _lease(master) == master.clock() + LEASE  # before the reply, no flush needed


def test_an_operators_command_set_elsewhere_is_told_after_the_next_reading(
    master: Master,
) -> None:
    build = master.claim_a_build()
    with master.engine.begin() as connection:  # as `wheelfarm builders pause` does
        set_command(connection, "pi-1", "pause")
    master.book.read()  # as the presence writer's next pass does, within a second
    master.clock.now += 10
    with queries(master.engine) as ran:
        assert master.builder().heartbeat(build, Heartbeat()).command == "pause"
    assert ran == []


def test_another_builders_build_is_refused_from_the_book(master: Master) -> None:
    build = master.claim_a_build()
    with master.engine.begin() as connection:
        other = add_builder(connection, "pi-2", now=master.clock())
    master.book.read()
    with queries(master.engine) as ran, pytest.raises(MasterRefused) as refused:
        master.builder(other).heartbeat(build, Heartbeat())
    assert (refused.value.status, ran) == (404, [])


def test_the_builds_next_heartbeat_after_its_report_is_refused(master: Master) -> None:
    build = master.claim_a_build()
    master.book.read()
    master.builder().report(build, BuildReport(status="failed", duration=1.0, log="no"))
    with pytest.raises(MasterRefused) as refused:
        master.builder().heartbeat(build, Heartbeat())
    assert refused.value.status == 409  # the book dropped it: the store says it is over


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def open_build(master: Master) -> int:
    return master.claim_a_build()


def test_a_book_never_read_answers_nothing(master: Master, open_build: int) -> None:
    assert LeaseBook(master.engine).lookup(open_build) is None


def test_a_fresh_reading_holds_the_open_build(master: Master, open_build: int) -> None:
    book = LeaseBook(master.engine, fresh_for=2.0, clock=Ticks())
    assert book.read() == 1
    lease = book.lookup(open_build)
    assert lease is not None
    assert (lease.builder, lease.project, lease.expires, lease.command) == (
        "pi-1",
        "demo",
        master.clock() + LEASE,
        "continue",
    )
    assert book.lookup(open_build + 1) is None  # not under way: the store decides


def test_a_stale_reading_answers_nothing(master: Master, open_build: int) -> None:
    ticks = Ticks()
    book = LeaseBook(master.engine, fresh_for=2.0, clock=ticks)
    book.read()
    ticks.now += 2.0
    assert book.lookup(open_build) is None


def test_a_reading_does_not_bring_back_a_build_closed_here(master: Master, open_build: int) -> None:
    # The store still has it open, as a reading that began before the report's commit would.
    ticks = Ticks()
    book = LeaseBook(master.engine, fresh_for=2.0, clock=ticks)
    book.read()
    book.closed(open_build)
    book.read()
    assert book.lookup(open_build) is None
    ticks.now += 5.0  # long after: the store's word is the truth again
    book.read()
    assert book.lookup(open_build) is not None


def test_a_reading_keeps_the_later_of_its_lease_and_one_renewed_here(
    master: Master, open_build: int
) -> None:
    book = LeaseBook(master.engine, fresh_for=2.0, clock=Ticks())
    book.read()
    lease = book.lookup(open_build)
    assert lease is not None
    longer = OpenLease("pi-1", "demo", "1.0", lease.target, lease.expires + 60, "continue")
    book.opened(open_build, longer)  # renewed in the store, after the next reading began
    with master.engine.begin() as connection:
        set_command(connection, "pi-1", "pause")
    book.read()
    assert book.lookup(open_build) == OpenLease(
        "pi-1", "demo", "1.0", lease.target, lease.expires + 60, "pause"
    )


def test_a_reading_does_not_hide_a_build_claimed_here(master: Master) -> None:
    # A claim committed after the reading began: the reading lacks it, the book keeps it.
    book = LeaseBook(master.engine, fresh_for=2.0, clock=Ticks())
    lease = OpenLease("pi-1", "later", "1", "t", master.clock() + LEASE, "continue")
    book.opened(99, lease)
    book.read()
    assert book.lookup(99) == lease
