"""The one schema both engines share (Alembic migrations in ``migrations/`` create it).

Facts are never deleted. Each fact keeps the order key of the latest event that asserted it
(``live_key``) and that retracted it (``removed_key``); whether it exists now is derived by
comparing keys with its parents' removals (see :mod:`wheelfarm.store.views`). Max is
commutative and idempotent, so the state does not depend on the order events arrive in.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    false,
)

__all__ = [
    "admins",
    "build_files",
    "builder_readings",
    "builders",
    "builds",
    "distro_packages",
    "distros",
    "events",
    "file_dependencies",
    "files",
    "index_projects",
    "jobs",
    "metadata",
    "projects",
    "releases",
    "samples",
    "skips",
    "state",
    "stats_agents",
    "stats_daily",
    "stats_hits",
    "targets",
]

metadata = MetaData()


def _key(name: str) -> Column[int]:
    return Column(name, BigInteger, nullable=False, server_default="0")


def _flag(name: str) -> Column[bool]:
    return Column(name, Boolean, nullable=False, server_default=false())


state = Table(
    "state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("serial", BigInteger, primary_key=True, autoincrement=False),
    Column("timestamp", BigInteger),
    Column("name", Text),
    Column("version", Text),
    Column("action", Text),
    Column("problem", Text),
)

projects = Table(
    "projects",
    metadata,
    Column("name", String(255), primary_key=True),
    _key("live_key"),
    _key("removed_key"),
    _key("registered_key"),
    Column("registered_name", Text),
    _key("seen_key"),
    Column("seen_name", Text),
    _key("quarantine_key"),
    _flag("quarantined"),
    Column("summary", Text),
    _key("last_serial"),
    _key("synced_serial"),
    _key("touched_key"),
    # PEP 792's status marker as the upstream's page states it (NULL: never read, so active),
    # with its reason; both follow ``status_key``, the page read that set them.
    _key("status_key"),
    Column("status_marker", String(32)),
    Column("status_reason", Text),
)

releases = Table(
    "releases",
    metadata,
    Column("project", String(255), primary_key=True),
    Column("version", String(255), primary_key=True),
    _key("live_key"),
    _key("removed_key"),
    _key("yank_key"),
    _flag("yanked"),
    Column("yanked_reason", Text),
    _key("quarantine_key"),
    _flag("quarantined"),
    _flag("prerelease"),
    ForeignKeyConstraint(["project"], ["projects.name"], name="releases_project_fkey"),
)

files = Table(
    "files",
    metadata,
    Column("project", String(255), primary_key=True),
    Column("filename", String(512), primary_key=True),
    Column("version", String(255), nullable=False),
    _key("live_key"),
    _key("removed_key"),
    Column("python_version", String(64)),
    Column("sha256", String(64)),
    Column("size", BigInteger),
    Column("upload_time", String(40)),
    Column("requires_python", Text),
    ForeignKeyConstraint(
        ["project", "version"],
        ["releases.project", "releases.version"],
        name="files_release_fkey",
    ),
    Index("files_release_idx", "project", "version"),
)


# -- the farm ------------------------------------------------------------------------------

targets = Table(
    "targets",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("platforms", Text, nullable=False),  # accepted platform tags, best first, spaces
    Column("distro", String(100)),
    # the published pages say no builder serves it (wheelfarm.farm.unserved.refresh_unserved)
    Column("unserved", Boolean, nullable=False, server_default=false()),
)

builders = Table(
    "builders",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("label", Text),
    Column("target", String(100)),
    Column("python", Text),
    Column("os", Text),
    Column("last_seen", Float),
    Column("command", String(16)),  # skip, pause or stop: told at the next heartbeat
)

# One row per (release, target) that needs or needed a build: the queue and its outcome.
jobs = Table(
    "jobs",
    metadata,
    Column("project", String(255), primary_key=True),
    Column("version", String(255), primary_key=True),
    Column("target", String(100), primary_key=True),
    Column("state", String(16), nullable=False),  # pending, building, built, failed, skipped
    Column("urgent", Boolean, nullable=False, server_default=false()),
    Column("priority", BigInteger, nullable=False, server_default="0"),
    Column("builder", String(100)),
    Column("lease_expires", Float),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("reason", Text),
    Column("updated_at", Float, nullable=False),
    # the build tag the job's next build carries (0: none), raised by `rebuild` of a built job
    Column("build_number", Integer, nullable=False, server_default="0"),
    Column("rebuild_reason", Text),  # why an operator rebuilt it, shown on the project page
    Index("jobs_claim_idx", "target", "state", "urgent", "priority"),
    Index("jobs_lease_idx", "state", "lease_expires"),
)

builds = Table(
    "builds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(255), nullable=False),
    Column("version", String(255), nullable=False),
    Column("target", String(100), nullable=False),
    Column("builder", String(100), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("duration", Float),
    Column("status", String(16), nullable=False),  # building, built, failed
    Column("reason", Text),  # a failure's most telling log line (wheelfarm.farm.triage)
    Column("category", String(32)),  # a failure's category, from its log (farm/triage.py)
    Column("log", LargeBinary),  # compressed; the tail is kept when capped
    Column("log_bytes", Integer),
    Column("build_number", Integer, nullable=False, server_default="0"),  # its wheels' build tag
    # the stored log was rewritten (a re-triage): its published /logs/N.txt is to be written again
    Column("log_stale", Boolean, nullable=False, server_default=false()),
    Index("builds_release_idx", "project", "version"),
)

build_files = Table(
    "build_files",
    metadata,
    Column("filename", String(512), primary_key=True),
    Column("build_id", Integer, ForeignKey("builds.id"), nullable=False),
    Column("project", String(255), nullable=False),
    Column("version", String(255), nullable=False),
    Column("target", String(100), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("tags", Text, nullable=False),
    Column("requires_python", Text),
    Column("requires_dist", Text),  # a JSON list
    Column("metadata", LargeBinary),  # the wheel's METADATA, served as PEP 658 metadata
    Column("metadata_sha256", String(64)),  # its hash, for the simple pages
    # whether its system dependencies were analysed (wheelfarm dependencies --reanalyse)
    Column("analysed", Boolean, nullable=False, server_default=false()),
    Index("build_files_release_idx", "project", "version"),
)

# What each published wheel needs from the system (see builder/sysdeps.py). ``tool``: ``apt`` (a
# Debian package), ``unresolved`` (a soname found nowhere), ``bundled`` (a soname the wheel
# carries), ``problem`` (what the analysis could not read). Pip's come from requires_dist.
file_dependencies = Table(
    "file_dependencies",
    metadata,
    Column("filename", String(512), ForeignKey("build_files.filename"), primary_key=True),
    Column("tool", String(16), primary_key=True),
    Column("name", String(512), primary_key=True),
)

# A distro is the base image a target's wheels run on; its packages need no installing.
distros = Table(
    "distros",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("loaded_at", Float, nullable=False),
    Column("source", Text),  # the file the list was loaded from
)

distro_packages = Table(
    "distro_packages",
    metadata,
    Column("distro", String(100), ForeignKey("distros.name"), primary_key=True),
    Column("package", String(100), primary_key=True),
)

# Releases (or whole projects, version '') an operator told us not to build.
skips = Table(
    "skips",
    metadata,
    Column("project", String(255), primary_key=True),
    Column("version", String(255), primary_key=True),
    Column("reason", Text, nullable=False),
)


# -- the published index -------------------------------------------------------------------

# One row per project whose published state changed at least once: our serial for it (from one
# counter, the highest serial + 1), whether its files still need writing, and what the site
# listed for it when it was last written (NULL: not listed), so a writer knows when the
# site-wide pages must be rewritten.
index_projects = Table(
    "index_projects",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("serial", BigInteger, nullable=False),
    Column("dirty", Boolean, nullable=False, server_default=false()),
    Column("listed", Text),
    Index("index_projects_dirty_idx", "dirty"),
    Index("index_projects_serial_idx", "serial"),
)


# -- statistics (see wheelfarm.stats and docs/stats.md) -------------------------------------

# A 64-bit key: an INTEGER PRIMARY KEY on SQLite (the rowid itself), a BIGINT on PostgreSQL.
_HIT_KEY = BigInteger().with_variant(Integer(), "sqlite")

# One row per distinct user agent seen, parsed once; hits point to it by a hash of the string.
stats_agents = Table(
    "stats_agents",
    metadata,
    Column("agent", _HIT_KEY, primary_key=True, autoincrement=False),
    Column("installer", String(64)),
    Column("installer_version", String(64)),
    Column("implementation", String(64)),
    Column("python", String(16)),  # major.minor
    Column("distro", String(128)),  # name and version
    Column("libc", String(64)),
    Column("arch", String(32)),
    Column("os", String(64)),
    Column("ci", Boolean),
    Column("bot", Boolean, nullable=False, server_default=false()),
)

# Raw hits, kept ``stats_keep_days`` days: their unique key is what makes ingesting the same
# log twice count once. ``client`` is a keyed hash of the address whose key changes daily. The
# day comes first in the key so new rows go to the end of the table (migration 0008).
stats_hits = Table(
    "stats_hits",
    metadata,
    Column("hit", BigInteger, nullable=False),
    Column("day", Integer, nullable=False),  # days since 1970-01-01 (UTC)
    Column("at", Float, nullable=False),
    Column("kind", String(8), nullable=False),  # download, search, page, json
    Column("project", String(255), nullable=False),
    Column("version", String(255)),
    Column("filename", String(512)),
    Column("target", String(100)),
    Column("client", String(16), nullable=False),
    Column("agent", BigInteger, nullable=False),
    PrimaryKeyConstraint("day", "hit", name="stats_hits_day_hit_pkey"),
)

# Daily counts, kept for good: one row per (day, kind, project, dimension, value); dimension
# ``total`` has the value ''. Bots are counted only under dimension ``bots``. Keyed by kind,
# dimension and day first (the figures read days of one dimension), and on SQLite the table is
# its key (``WITHOUT ROWID``): a log's ingest writes hundreds of thousands of rows (0016).
stats_daily = Table(
    "stats_daily",
    metadata,
    Column("day", Integer, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("project", String(255), nullable=False),
    Column("dimension", String(24), nullable=False),
    Column("value", String(512), nullable=False),
    Column("hits", BigInteger, nullable=False),
    PrimaryKeyConstraint("kind", "dimension", "day", "project", "value", name="stats_daily_pkey"),
    # A project's downloads (project pages, the publisher's refresh) by project and day.
    Index("stats_daily_project_idx", "kind", "dimension", "project", "day"),
    sqlite_with_rowid=False,
)


# -- monitoring ----------------------------------------------------------------------------

# Operators who may see the dashboard and use its controls; tokens stored as SHA-256 only.
admins = Table(
    "admins",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

# The latest readings each builder sent (a JSON object of numbers), as the master received them.
builder_readings = Table(
    "builder_readings",
    metadata,
    Column("builder", String(100), primary_key=True),
    Column("received_at", Float, nullable=False),
    Column("readings", Text, nullable=False),
)

# The history of readings: ``source`` is ``master`` or ``builder:NAME``; ``step`` is 0 for a
# sample as taken, else the seconds an average covers (300, 3600); ``at`` its start.
samples = Table(
    "samples",
    metadata,
    Column("source", String(120), primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("at", Float, primary_key=True),
    Column("readings", Text, nullable=False),
    Index("samples_age_idx", "step", "at"),
)
