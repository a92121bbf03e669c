"""A builder that lies, a builder that is slow, a client guessing tokens: the master holds up.

Over real HTTP on loopback, on both engines.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.farm.conftest import Farm, hello
from tests.fixtures.sdists import make_sdist
from wheelfarm.farm.registry import add_builder
from wheelfarm.farm.throttle import TokenThrottle
from wheelfarm.protocol import API_PREFIX, Heartbeat
from wheelfarm.publish.incremental import publish_dirty
from wheelfarm.publish.tree import Tree
from wheelfarm.store.marks import mark_changed
from wheelfarm.store.schema import builds


def _claimed(farm: Farm, tmp_path: Path, name: str = "demo-pure") -> int:
    """The id of a build the farm's builder claimed (for a fresh release of ``name``)."""
    farm.publish(make_sdist(tmp_path / "sdists", name, "1.0"), name, "1.0")
    client = farm.client()
    hello(client)
    job = client.claim().job
    assert job is not None
    return job.build_id


def _post(farm: Farm, path: str, content: str, token: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{farm.server.url}{API_PREFIX}{path}",
        headers={
            "Authorization": f"Bearer {token or farm.token}",
            "Content-Type": "application/json",
        },
        content=content,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        # An infinite duration was stored, and every later publish died of OverflowError.
        ("result", '{"status": "failed", "duration": 1e999}', "duration"),
        ("result", '{"status": "failed", "duration": 1e12}', "duration"),
        ("result", '{"status": "failed", "duration": NaN}', "duration"),
        ("result", '{"status": "failed", "duration": -1}', "duration"),
        ("result", '{"status": "failed", "duration": 1, "reason": "ok\\u202egnp"}', "reason"),
        # Health readings are the exception: a nonsense reading is dropped on its own and the
        # rest kept (issue 16), tested in tests/monitor/test_readings.py.
    ],
)
def test_a_number_out_of_range_is_a_422_naming_the_field_and_nothing_is_stored(
    farm: Farm, tmp_path: Path, path: str, body: str, field: str
) -> None:
    build_id = _claimed(farm, tmp_path)
    response = _post(farm, f"/builds/{build_id}/{path}", body)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"][0]["loc"]
    with farm.engine.connect() as connection:
        build = connection.execute(select(builds)).one()
    assert (build.status, build.duration) == ("building", None)


@pytest.mark.parametrize(
    ("build_id", "status"),
    [("99999999999999999999999", 422), ("2147483648", 422), ("nan", 422), ("0", 422)],
)
def test_a_build_id_the_store_cannot_hold_is_refused_not_a_500(
    farm: Farm, tmp_path: Path, build_id: str, status: int
) -> None:
    _claimed(farm, tmp_path)
    for path in ("heartbeat", "result"):
        body = '{"status": "failed", "duration": 1}' if path == "result" else "{}"
        response = _post(farm, f"/builds/{build_id}/{path}", body)
        assert response.status_code == status, response.text


def test_a_huge_refused_input_is_not_echoed_back(farm: Farm, tmp_path: Path) -> None:
    build_id = _claimed(farm, tmp_path)
    log = "x" * (4 << 20) + "y"  # one character over the limit
    body = '{"status": "failed", "duration": 1, "log": "' + log + '"}'
    response = _post(farm, f"/builds/{build_id}/result", body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "log"]
    assert len(response.content) < 2000


def _slow_body(size: int, seconds: float, started: threading.Event) -> Iterator[bytes]:
    """``size`` bytes spread over ``seconds``: an upload over a slow link."""
    pieces = 20
    for _ in range(pieces):
        started.set()
        yield b"x" * (size // pieces)
        time.sleep(seconds / pieces)


def test_claims_heartbeats_and_publishing_go_on_during_a_30_s_upload(
    farm: Farm, tmp_path: Path
) -> None:
    """The token check used to write in the transaction that stayed open while the body
    streamed: on SQLite another builder's claim (and the publisher) then waited for the whole
    upload, and failed after 30 s."""
    farm.publish(make_sdist(tmp_path / "sdists", "demo-two", "1.0"), "demo-two", "1.0")
    build_id = _claimed(farm, tmp_path)
    with farm.engine.begin() as connection:
        other_token = add_builder(connection, "other", now=farm.clock())
    other = farm.client(other_token)
    started = threading.Event()
    uploads: list[httpx.Response] = []

    def upload() -> None:
        uploads.append(
            farm.http.put(
                f"{farm.server.url}{API_PREFIX}/builds/{build_id}/files/demo_pure-1.0-py3-none-any.whl",
                headers={
                    "Authorization": f"Bearer {farm.token}",
                    "X-Wheel-Sha256": hashlib.sha256(b"x" * 20_000).hexdigest(),
                    "Content-Length": "20000",
                },
                content=_slow_body(20_000, 30.0, started),
            )
        )

    uploader = threading.Thread(target=upload)
    uploader.start()
    try:
        assert started.wait(30)
        time.sleep(1.0)  # the upload is under way
        begun = time.monotonic()
        hello(other)
        job = other.claim().job
        assert job is not None  # the other release
        assert other.heartbeat(job.build_id, Heartbeat()).command == "continue"
        with farm.engine.begin() as connection:
            mark_changed(connection, ["demo-two"])
        published = publish_dirty(
            farm.engine,
            Tree(tmp_path / "www", tmp_path / "withdrawn"),
            upstream_simple_url=farm.upstream.simple_url,
            base_url="http://127.0.0.1",
        )
        assert "demo-two" in published.changed and not published.failed
        took = time.monotonic() - begun
        assert uploader.is_alive()  # all of that happened while the body streamed
    finally:
        uploader.join(timeout=120)
    assert took < 5.0
    assert [response.status_code for response in uploads] == [422]  # not a wheel, but served


def test_failed_token_attempts_are_logged_and_locked_out_per_address(
    farm: Farm, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="wheelfarm.farm.throttle")
    codes = [_post(farm, "/claim", "{}", token="guess").status_code for _ in range(8)]
    assert codes[:6] == [401] * 6  # five free failures, and the one that locks the address
    assert codes[6:] == [429, 429]  # locked out: the token is not even looked at
    assert any("127.0.0.1" in record.getMessage() for record in caplog.records)
    locked = _post(farm, "/claim", "{}")  # the right token too, from this address, for now
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) >= 1


def test_the_throttle_is_per_address_bounded_and_forgets() -> None:
    throttle = TokenThrottle(free_failures=2, max_lockout=8, forget_after=100, max_addresses=3)
    for _ in range(6):
        throttle.failed("10.0.0.1", 0.0)
    assert throttle.locked_for("10.0.0.1", 0.0) == 8  # doubled up to the cap
    assert throttle.locked_for("10.0.0.2", 0.0) == 0  # another address is not slowed
    assert throttle.locked_for("10.0.0.1", 200.0) == 0  # forgotten after a quiet while
    for number in range(10):
        throttle.failed(f"10.0.1.{number}", 300.0)
    assert len(throttle._failures) == 3  # bounded
    throttle.succeeded("10.0.1.9")
    assert throttle.locked_for("10.0.1.9", 300.0) == 0
