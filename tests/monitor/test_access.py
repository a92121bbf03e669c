"""Who may see what: admins with tokens, a builder's token is not one, the public status."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from tests.monitor.conftest import Master
from wheelfarm.farm.registry import DuplicateName
from wheelfarm.monitor.admins import (
    TOKEN_FILE,
    add_admin,
    authenticate_admin,
    csrf_token,
    ensure_local_admin,
    list_admins,
    remove_admin,
)
from wheelfarm.monitor.routes import COOKIE

ADMIN_ONLY = ("/monitor/", "/monitor/data.json", "/monitor/history.json", "/metrics")


@pytest.mark.parametrize("path", ADMIN_ONLY)
def test_no_token_gets_401(master: Master, path: str) -> None:
    assert httpx.get(master.url + path).status_code == 401
    assert httpx.post(master.url + "/monitor/control", json={"action": "pause"}).status_code == 401


@pytest.mark.parametrize("path", ADMIN_ONLY)
def test_a_builder_token_is_not_an_admin_token(master: Master, path: str) -> None:
    as_builder = {"Authorization": f"Bearer {master.builder_token}"}
    assert httpx.get(master.url + path, headers=as_builder).status_code == 401
    assert httpx.get(master.url + path, headers=master.admin()).status_code == 200


def test_the_status_needs_no_token(master: Master) -> None:
    assert httpx.get(master.url + "/status.json").status_code == 200
    assert "wheelfarm status" in httpx.get(master.url + "/status/").text


def test_signing_in_sets_a_secure_strict_httponly_cookie(master: Master) -> None:
    refused = httpx.post(master.url + "/monitor/login", data={"token": master.builder_token})
    assert refused.status_code == 401 and "not an admin token" in refused.text
    answer = httpx.post(master.url + "/monitor/login", data={"token": master.admin_token})
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"].lower()
    for flag in ("httponly", "secure", "samesite=strict", "path=/"):
        assert flag in cookie
    signed_in = {COOKIE: master.admin_token}
    assert httpx.get(master.url + "/monitor/", cookies=signed_in).status_code == 200


def test_a_control_sent_with_the_cookie_needs_the_form_token(master: Master) -> None:
    signed_in = {COOKIE: master.admin_token}
    forged = httpx.post(
        master.url + "/monitor/control", data={"action": "pause"}, cookies=signed_in
    )
    assert forged.status_code == 403
    good = {"action": "pause", "csrf": csrf_token(master.admin_token)}
    answer = httpx.post(master.url + "/monitor/control", data=good, cookies=signed_in)
    assert answer.status_code == 200 and answer.json() == {"farm": "pause"}


def test_admins_are_added_listed_and_revoked(engine: Engine) -> None:
    with engine.begin() as connection:
        token = add_admin(connection, "bob", now=1.0)
        with pytest.raises(DuplicateName):
            add_admin(connection, "bob", now=2.0)
        assert authenticate_admin(connection, token) == "bob"
        assert authenticate_admin(connection, token + "x") is None
        assert [a.name for a in list_admins(connection)] == ["bob"]
        assert remove_admin(connection, "bob")
        assert authenticate_admin(connection, token) is None
        assert not remove_admin(connection, "bob")


def test_the_local_admin_is_made_once_with_a_private_token_file(
    engine: Engine, tmp_path: Path
) -> None:
    with engine.begin() as connection:
        written = ensure_local_admin(connection, tmp_path, now=1.0)
        assert written == tmp_path / TOKEN_FILE
        assert stat.S_IMODE(os.stat(written).st_mode) == 0o600
        assert authenticate_admin(connection, written.read_text().strip()) == "local"
        assert ensure_local_admin(connection, tmp_path, now=2.0) is None  # not twice
