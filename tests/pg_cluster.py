"""A throwaway PostgreSQL cluster for the test suite.

The store is tested against a real PostgreSQL because SQLite would hide the
behaviour we depend on (row locks, ``ON CONFLICT``, transactional DDL).  Rather
than needing a shared server, each test session starts its own cluster from the
installed server binaries, in a temporary directory, tuned for speed rather
than durability, and removes it afterwards.

initdb and postgres refuse to run as root, and CI runs as root, so when we are
root the server is run as the ``postgres`` system user via ``runuser``.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import weakref
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

__all__ = [
    "ClusterStartError",
    "PostgresUnavailable",
    "ThrowawayCluster",
    "find_pg_bindir",
]

#: Where Debian/Ubuntu install versioned server binaries (``<root>/<version>/bin``).
DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")

#: The system user the server runs as when we are root.
SERVER_USER = "postgres"

_REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")
_START_ATTEMPTS = 3
_PG_CTL_TIMEOUT_S = 30
_LOG_TAIL_LINES = 40
_PORT_IN_USE = re.compile(
    r"could not bind|address already in use|could not create any TCP/IP", re.I
)


class PostgresUnavailable(Exception):
    """No usable PostgreSQL server binaries were found (message says where we looked).

    A distinct type so a test session can skip the PostgreSQL tests instead of
    failing when the server simply is not installed.
    """


class ClusterStartError(RuntimeError):
    """The binaries exist but the cluster could not be created or started.

    Unlike :class:`PostgresUnavailable` this is a real failure, so the message
    carries the tail of the server log to make CI failures diagnosable.
    """


def _has_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in _REQUIRED_BINARIES)


def _version_key(path: Path) -> tuple[int, ...]:
    """Sort ``/usr/lib/postgresql/<version>`` numerically, so 15 beats 9.6."""
    parts = re.findall(r"\d+", path.name)
    return tuple(int(p) for p in parts)


def find_pg_bindir() -> Path | None:
    """Return the directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None.

    PATH wins so a developer can pick a version; on Debian the server binaries
    are usually not on PATH, so fall back to the newest versioned install.
    """
    initdb = shutil.which("initdb")
    if initdb is not None:
        # Debian's /usr/bin/initdb may be a symlink into the versioned bindir,
        # which is where pg_ctl and postgres live too.
        candidate = Path(initdb).resolve().parent
        if _has_binaries(candidate):
            return candidate
    if DEBIAN_PG_ROOT.is_dir():
        versions = sorted(
            (p for p in DEBIAN_PG_ROOT.iterdir() if p.is_dir()), key=_version_key, reverse=True
        )
        for version_dir in versions:
            candidate = version_dir / "bin"
            if _has_binaries(candidate):
                return candidate
    return None


def _free_port() -> int:
    """Ask the kernel for a currently free loopback port.

    There is a window between closing this socket and the server binding the
    port, which is why :meth:`ThrowawayCluster.start` retries.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int = _LOG_TAIL_LINES, start: int = 0) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(start)
            data = fh.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"<could not read {path}: {exc}>"
    return "\n".join(data.splitlines()[-lines:])


def _check_traversable(path: Path, user: str) -> None:
    """Fail clearly if ``user`` cannot reach ``path`` (e.g. TMPDIR under /root)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            raise ClusterStartError(
                f"{user!r} cannot traverse {parent} (mode {stat.filemode(mode)}) to reach "
                f"{path}; point TMPDIR at a world-traversable directory such as /tmp"
            )


def _teardown(command_prefix: list[str], pg_ctl: Path, datadir: Path, tmpdir: Path) -> None:
    """Stop the server and delete its files; safe to call on a half-started cluster.

    A plain function (not a method) so :func:`weakref.finalize` can run it
    without keeping the cluster object alive.
    """
    if (datadir / "postmaster.pid").exists():
        subprocess.run(
            [*command_prefix, str(pg_ctl), "stop", "-D", str(datadir), "-m", "immediate", "-w"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=_child_env(),
            cwd=tmpdir,
            check=False,
            timeout=_PG_CTL_TIMEOUT_S + 5,
        )
    shutil.rmtree(tmpdir, ignore_errors=True)


def _child_env() -> dict[str, str]:
    """Environment for initdb/pg_ctl: no inherited PG* settings, C locale messages."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    env.pop("LANGUAGE", None)
    return env


class ThrowawayCluster:
    """A private PostgreSQL cluster in a temporary directory, listening on 127.0.0.1.

    Durability is switched off (fsync, synchronous_commit, full_page_writes)
    because the data is thrown away and the tests should be fast.  Use as a
    context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, bindir: Path | None = None) -> None:
        self._bindir = bindir
        self._tmpdir: Path | None = None
        self._port: int | None = None
        self._finalizer: weakref.finalize[..., ThrowawayCluster] | None = None

    # -- lifecycle -----------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port the running server listens on."""
        if self._port is None:
            raise RuntimeError("cluster is not running; call start() first")
        return self._port

    @property
    def datadir(self) -> Path:
        """The cluster's data directory (inside the temporary directory)."""
        if self._tmpdir is None:
            raise RuntimeError("cluster is not running; call start() first")
        return self._tmpdir / "data"

    @property
    def log_path(self) -> Path:
        """The server log, useful when a test needs to see what the server said."""
        if self._tmpdir is None:
            raise RuntimeError("cluster is not running; call start() first")
        return self._tmpdir / "server.log"

    def start(self) -> None:
        """Create and start the cluster; raise :class:`PostgresUnavailable` if not installed."""
        if self._tmpdir is not None:
            raise RuntimeError("cluster already started")
        bindir = self._resolve_bindir()
        prefix = self._command_prefix()

        tmpdir = Path(tempfile.mkdtemp(prefix="wheelfarm-pg-"))
        self._tmpdir = tmpdir
        self._finalizer = weakref.finalize(
            self, _teardown, prefix, bindir / "pg_ctl", tmpdir / "data", tmpdir
        )
        try:
            if prefix:
                # mkdtemp made a 0700 root-owned directory; the server user
                # must own it to create the data directory, log and socket.
                _check_traversable(tmpdir, SERVER_USER)
                owner = pwd.getpwnam(SERVER_USER)
                os.chown(tmpdir, owner.pw_uid, owner.pw_gid)
            self._initdb(bindir, prefix)
            self._configure()
            self._start_server(bindir, prefix)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server immediately and delete its directory; idempotent."""
        finalizer, self._finalizer = self._finalizer, None
        self._tmpdir = None
        self._port = None
        if finalizer is not None:
            finalizer()

    def __enter__(self) -> ThrowawayCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- databases -----------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL for ``database`` on this cluster (psycopg 3 driver)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create ``name`` (optionally copied from ``template``) and return its URL.

        Copying a migrated template is much faster than migrating every test
        database from scratch.
        """
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
        self._execute_autocommit(query)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, disconnecting any sessions a test left behind."""
        self._execute_autocommit(
            sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name))
        )

    # -- internals -----------------------------------------------------------

    def _execute_autocommit(self, query: sql.Composed) -> None:
        # CREATE/DROP DATABASE cannot run inside a transaction block.
        with psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        ) as conn:
            conn.execute(query)

    def _resolve_bindir(self) -> Path:
        if self._bindir is not None:
            if not _has_binaries(self._bindir):
                raise PostgresUnavailable(
                    f"{self._bindir} does not contain all of {', '.join(_REQUIRED_BINARIES)}"
                )
            return self._bindir
        found = find_pg_bindir()
        if found is None:
            raise PostgresUnavailable(
                "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found: looked for "
                f"initdb on PATH and in {DEBIAN_PG_ROOT}/*/bin; install the PostgreSQL "
                "server package (e.g. apt-get install postgresql)"
            )
        return found

    @staticmethod
    def _command_prefix() -> list[str]:
        """Command prefix that runs server tools as a non-root user when we are root."""
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise PostgresUnavailable(
                f"running as root, and PostgreSQL refuses to run as root, but there is no "
                f"{SERVER_USER!r} system user to run it as; install the PostgreSQL server "
                "package or run the tests as a non-root user"
            ) from None
        runuser = shutil.which("runuser")
        if runuser is None:
            raise PostgresUnavailable(
                "running as root, and PostgreSQL refuses to run as root, but runuser "
                "(util-linux) was not found to switch to the postgres user"
            )
        return [runuser, "-u", SERVER_USER, "--"]

    def _run(self, prefix: list[str], argv: list[str], what: str) -> None:
        assert self._tmpdir is not None
        result = subprocess.run(
            [*prefix, *argv],
            capture_output=True,
            text=True,
            env=_child_env(),
            cwd=self._tmpdir,
            check=False,
            timeout=120,
        )
        if result.returncode != 0:
            raise ClusterStartError(
                f"{what} failed (exit {result.returncode}): {' '.join(argv)}\n"
                f"{result.stdout}{result.stderr}"
            )

    def _initdb(self, bindir: Path, prefix: list[str]) -> None:
        self._run(
            prefix,
            [
                str(bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C",
            ],
            "initdb",
        )

    def _configure(self) -> None:
        """Append our settings to postgresql.conf (later lines win).

        Appending, not replacing, keeps the file owned by the server user.
        The port is passed on the command line because it changes on retry.
        """
        assert self._tmpdir is not None
        socket_dir = str(self._tmpdir).replace("'", "''")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{socket_dir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
        }
        with (self.datadir / "postgresql.conf").open("a", encoding="utf-8") as fh:
            fh.write("\n# wheelfarm throwaway test cluster\n")
            fh.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _start_server(self, bindir: Path, prefix: list[str]) -> None:
        log = self.log_path
        errors: list[str] = []
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = _free_port()
            log_offset = log.stat().st_size if log.exists() else 0
            try:
                self._run(
                    prefix,
                    [
                        str(bindir / "pg_ctl"),
                        "start",
                        "-D",
                        str(self.datadir),
                        "-l",
                        str(log),
                        "-w",
                        "-t",
                        str(_PG_CTL_TIMEOUT_S),
                        "-o",
                        f"-p {port}",
                    ],
                    "pg_ctl start",
                )
            except ClusterStartError as exc:
                tail = _tail(log, start=log_offset)
                errors.append(f"attempt {attempt} (port {port}): {exc}\n--- server log ---\n{tail}")
                if _PORT_IN_USE.search(tail) and attempt < _START_ATTEMPTS:
                    continue
                raise ClusterStartError("\n\n".join(errors)) from None
            self._port = port
            return
