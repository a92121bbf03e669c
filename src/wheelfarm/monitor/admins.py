"""Operators allowed to see the dashboard and use its controls, each with a token.

Like builder tokens, admin tokens are 256-bit random strings shown once; only their SHA-256
is stored. The two are kept apart: a builder's token is never an admin's. ``up`` makes one
for the local operator on its first start and leaves it in ``<data_dir>/admin-token``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from wheelfarm.farm.registry import DuplicateName, token_hash
from wheelfarm.store.schema import admins

__all__ = [
    "LOCAL_ADMIN",
    "TOKEN_FILE",
    "AdminInfo",
    "add_admin",
    "authenticate_admin",
    "csrf_token",
    "ensure_local_admin",
    "list_admins",
    "remove_admin",
]

LOCAL_ADMIN = "local"
TOKEN_FILE = "admin-token"


@dataclass(frozen=True)
class AdminInfo:
    name: str
    created_at: float


def add_admin(connection: Connection, name: str, *, now: float) -> str:
    """Add an admin; returns the token (shown once, stored hashed)."""
    token = secrets.token_urlsafe(32)
    try:
        with connection.begin_nested():
            row = {"name": name, "token_hash": token_hash(token), "created_at": now}
            connection.execute(insert(admins).values(**row))
    except IntegrityError as error:
        raise DuplicateName("admin", name) from error
    return token


def list_admins(connection: Connection) -> list[AdminInfo]:
    rows = connection.execute(select(admins.c.name, admins.c.created_at).order_by(admins.c.name))
    return [AdminInfo(row.name, row.created_at) for row in rows]


def remove_admin(connection: Connection, name: str) -> bool:
    """Revoke an admin: the token stops working at once."""
    return connection.execute(delete(admins).where(admins.c.name == name)).rowcount > 0


def authenticate_admin(connection: Connection, token: str) -> str | None:
    """The name of the admin holding ``token``; None for any other (a builder's too)."""
    if not token or len(token) > 200:
        return None
    digest = token_hash(token)
    return connection.execute(select(admins.c.name).where(admins.c.token_hash == digest)).scalar()


def csrf_token(token: str) -> str:
    """The value the dashboard's forms carry: derived from the signed-in token, not guessable."""
    return hmac.new(token.encode(), b"wheelfarm-csrf", hashlib.sha256).hexdigest()


def ensure_local_admin(connection: Connection, data_dir: Path, *, now: float) -> Path | None:
    """On the first start, make the local operator's admin and write its token (mode 0600).

    Returns the file written, or None when the local admin exists already (its token file
    is then left alone: an operator may have moved it away on purpose).
    """
    if connection.execute(select(admins.c.name).where(admins.c.name == LOCAL_ADMIN)).first():
        return None
    token = add_admin(connection, LOCAL_ADMIN, now=now)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / TOKEN_FILE
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    path.chmod(0o600)  # an existing file keeps its mode through O_CREAT
    return path
