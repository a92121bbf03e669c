"""Credentials in an upstream or database URL never reach a message or a log line."""

from __future__ import annotations

import logging

import pytest

from wheelfarm.config import load_settings
from wheelfarm.errors import ConfigError, UpstreamError, redact_url
from wheelfarm.http import RetryPolicy, new_client
from wheelfarm.names import NormalizedName
from wheelfarm.store.database import StoreNotMigrated, create_store_engine
from wheelfarm.upstream.pages import PageClient


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://user:secret@host/simple/", "https://user:***@host/simple/"),
        ("postgresql://wf:pw@db:5432/wheelfarm", "postgresql://wf:***@db:5432/wheelfarm"),
        ("postgresql+psycopg://wf:@db/x", "postgresql+psycopg://wf:***@db/x"),
        ("https://TOKEN@host/simple/", "https://***@host/simple/"),
        (
            "GET https://a:b@h/x failed; retry https://c:d@h/y",
            "GET https://a:***@h/x failed; retry https://c:***@h/y",
        ),
        ("https://host/simple/", "https://host/simple/"),
        ("mailto:someone@example.org", "mailto:someone@example.org"),  # not a URL with ://
        ("sqlite:///data/wheelfarm.sqlite", "sqlite:///data/wheelfarm.sqlite"),
        ("https://host/a@b", "https://host/a@b"),  # an @ in the path is no credential
    ],
)
def test_redact_url_hides_passwords_and_lone_user_names(text: str, shown: str) -> None:
    assert redact_url(text) == shown


def test_a_config_error_about_a_url_hides_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"WHEELFARM_UPSTREAM": "ftp://user:secret@host/simple/"})
    assert "secret" not in str(caught.value)
    assert "ftp://user:***@host/simple/" in str(caught.value)
    with pytest.raises(ConfigError) as unsupported:
        create_store_engine("mysql://wf:secret@db/wheelfarm")
    assert "secret" not in str(unsupported.value) and "wf:***@db" in str(unsupported.value)


def test_store_not_migrated_hides_the_password() -> None:
    message = str(StoreNotMigrated("postgresql://wf:secret@db/x", "abc", "def"))
    assert "secret" not in message and "postgresql://wf:***@db/x" in message


def test_an_upstream_error_and_its_retry_log_lines_hide_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy = RetryPolicy(retries=2, initial_wait=0.01, max_wait=0.02)
    with new_client(2.0) as client:
        pages = PageClient("http://user:secret@127.0.0.1:9/simple/", lambda n: None, client, policy)
        with caplog.at_level(logging.WARNING), pytest.raises(UpstreamError) as caught:
            pages.fetch(NormalizedName("demo"))
    assert "secret" not in str(caught.value)
    assert "http://user:***@127.0.0.1:9/simple/demo/" in str(caught.value)
    assert len(caplog.records) == 2  # one line per retry
    assert all("secret" not in record.getMessage() for record in caplog.records)
