"""Heartbeats without writes: tokens from a cached table, presence written in batches.

What a heartbeat leaves (last seen, its lease, its readings) reaches the store at the next
flush; a lease close to its end is renewed by the request itself; a revoked token works for
at most the cache's refresh; a builder whose clock is hours off keeps its lease.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError

from tests.monitor.conftest import Master
from wheelfarm.farm.jobs import expire_leases
from wheelfarm.farm.presence import Presence
from wheelfarm.farm.readings import latest_readings
from wheelfarm.farm.registry import add_builder, remove_builder
from wheelfarm.farm.tokens import TokenCache
from wheelfarm.protocol import Health, Heartbeat
from wheelfarm.store.schema import builder_readings, builders, jobs

LEASE = 300.0  # FarmConfig's default


def _job(master: Master) -> tuple[str, str | None, float | None]:
    with master.engine.connect() as connection:
        row = connection.execute(select(jobs.c.state, jobs.c.builder, jobs.c.lease_expires)).one()
    return row.state, row.builder, row.lease_expires


def test_last_seen_lease_and_readings_reach_the_store_at_the_flush(master: Master) -> None:
    build = master.claim_a_build()
    master.clock.now += 100  # the lease has 200 s left: more than half, so it is only noted
    master.builder().heartbeat(build, Heartbeat(health=Health(load=3.0)))
    master.flush()
    with master.engine.connect() as connection:
        seen = connection.execute(select(builders.c.last_seen)).scalar_one()
        received, readings = latest_readings(connection)["pi-1"]
    assert (seen, received, readings) == (master.clock(), master.clock(), {"load": 3.0})
    assert _job(master) == ("building", "pi-1", master.clock() + LEASE)
    assert master.presence.pending() == 0


def test_a_lease_near_its_end_is_renewed_before_the_reply(master: Master) -> None:
    build = master.claim_a_build()
    master.clock.now += 250  # 50 s left: less than half a lease
    assert master.builder().heartbeat(build, Heartbeat()).command == "continue"
    assert _job(master) == ("building", "pi-1", master.clock() + LEASE)  # no flush needed


def test_a_builder_whose_clock_is_hours_off_keeps_its_lease(master: Master) -> None:
    build = master.claim_a_build()
    for _ in range(3):  # a heartbeat every 100 s, from a builder 5 hours behind
        master.clock.now += 100
        behind = Health(clock=master.clock() - 5 * 3600, load=1.0)
        assert master.builder().heartbeat(build, Heartbeat(health=behind)).command == "continue"
        master.flush()
    with master.engine.begin() as connection:  # past the first lease: nothing to expire
        assert expire_leases(connection, master.clock() + LEASE - 1) == 0
        _, readings = latest_readings(connection)["pi-1"]
    assert _job(master) == ("building", "pi-1", master.clock() + LEASE)
    assert readings["clock_offset"] == pytest.approx(-5 * 3600)


def test_a_noted_renewal_does_not_revive_a_job_that_expired_meanwhile(master: Master) -> None:
    build = master.claim_a_build()
    master.clock.now += 100
    master.builder().heartbeat(build, Heartbeat())
    with master.engine.begin() as connection:  # the job expires before (or after) the flush
        assert expire_leases(connection, master.clock() + 2 * LEASE) == 1
    master.flush()
    assert _job(master) == ("pending", None, None)


def test_a_revoked_token_works_until_the_next_refresh_and_then_stops(engine: Engine) -> None:
    now = [0.0]
    with engine.begin() as connection:
        token = add_builder(connection, "pi-1", now=1.0)
    tokens = TokenCache(engine, refresh=2.0, clock=lambda: now[0])
    assert tokens.builder(token) == "pi-1"
    with engine.begin() as connection:
        remove_builder(connection, "pi-1")
    now[0] = 1.9  # within the refresh: the cached table still has it
    assert tokens.known(token) == "pi-1"
    now[0] = 2.0  # the table is read again: revoked
    assert tokens.known(token) is None and tokens.builder(token) is None


def test_a_table_read_ahead_serves_tokens_and_drops_revoked_ones(engine: Engine) -> None:
    # As the presence writer reads it each second: requests never wait for the table.
    now = [0.0]
    with engine.begin() as connection:
        token = add_builder(connection, "pi-1", now=1.0)
    tokens = TokenCache(engine, refresh=2.0, clock=lambda: now[0])
    assert tokens.known(token) is None  # never read
    assert tokens.read() == 1
    now[0] = 1.9
    assert tokens.known(token) == "pi-1"
    with engine.begin() as connection:
        remove_builder(connection, "pi-1")
    assert tokens.read() == 0  # read ahead at 1.9: fresh until 3.9, without the token
    now[0] = 3.8
    assert tokens.known(token) is None


def test_a_token_added_after_the_table_was_read_works_at_once(engine: Engine) -> None:
    tokens = TokenCache(engine, refresh=3600.0)
    assert tokens.builder("no such token") is None  # the table is read (empty)
    with engine.begin() as connection:
        token = add_builder(connection, "pi-2", now=1.0)
    assert tokens.known(token) is None  # not in the cached table
    assert tokens.builder(token) == "pi-2"  # so the store is asked
    assert tokens.known(token) == "pi-2"


def test_notes_that_could_not_be_written_are_kept_for_the_next_flush(engine: Engine) -> None:
    with engine.begin() as connection:
        add_builder(connection, "pi-1", now=1.0)
    builder_readings.drop(engine)  # the next write fails
    presence = Presence(engine, every=3600.0)  # the writer thread sleeps through the test
    presence.seen("pi-1", 1.0)
    presence.readings("pi-1", Health(load=1.0), 1.0)
    with pytest.raises(DBAPIError):
        presence.flush()
    assert presence.pending() == 2  # put back, in one transaction: nothing half-written
    presence.seen("pi-1", 2.0)  # noted meanwhile: newer than what was put back
    builder_readings.create(engine)
    assert presence.flush() == 2
    with engine.connect() as connection:
        assert connection.execute(select(builders.c.last_seen)).scalar_one() == 2.0
        assert latest_readings(connection)["pi-1"] == (1.0, {"load": 1.0})


def test_stopping_the_server_writes_what_its_last_requests_noted(master: Master) -> None:
    master.hello()
    master.builder().claim(Heartbeat(health=Health(load=0.5)))
    master.server.stop()  # the app's shutdown flushes: nothing waits for the writer's pass
    assert master.presence.pending() == 0
    with master.engine.connect() as connection:
        assert latest_readings(connection)["pi-1"][1] == {"load": 0.5}
