"""Settings, read once at the edge: a TOML file, then ``WHEELFARM_*`` variables, then flags.

Each later source overrides the earlier ones. Nothing below the command line reads the
environment or the file: the :class:`Settings` object is handed down.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from wheelfarm.errors import ConfigError

__all__ = [
    "CONFIG_FILE_NAME",
    "Settings",
    "load_settings",
    "pip_index_url",
]

CONFIG_FILE_NAME = "wheelfarm.toml"


@dataclass(frozen=True)
class Settings:
    """Every setting wheelfarm has; docs/configuration.md describes each one."""

    upstream: str = ""
    changelog: str = ""
    projects: tuple[str, ...] = ()
    database: str = ""
    data_dir: Path = Path("wheelfarm-data")
    http_timeout: float = 30.0
    max_upstream_response_bytes: int = 64 * 1024 * 1024
    upstream_deadline_seconds: float = 120.0
    retries: int = 8
    retry_wait: float = 1.0
    poll_seconds: float = 60.0
    reconcile_workers: int = 8  # threads reading project pages (docs/configuration.md)
    missing_page_grace_seconds: float = 3600.0  # a 404 the changelog contradicts is stale this long
    host: str = "127.0.0.1"
    port: int = 8080
    pip_options: tuple[str, ...] = ()
    target_distros: tuple[tuple[str, str], ...] = ()  # (target, distro) pairs
    emulate: tuple[str, ...] = ()  # Debian architectures `up` builds for under emulation
    base_url: str = ""
    stats_keep_days: int = 90  # raw hits are kept this many days (docs/stats.md)
    stats_refresh_seconds: float = 2.0  # up re-publishes pages whose downloads moved
    stats_page_seconds: float = 300.0  # up rewrites /stats/, its plots and packages.json
    allow_unsandboxed_builds: bool = False
    max_wheels_per_job: int = 8
    public_metrics: bool = False  # /metrics without an admin token
    monitor_seconds: float = 60.0  # how often the master samples readings into the history
    min_free_disk: int = 2 << 30  # bytes free for wheels below which building pauses
    page_max_age: int = 0  # seconds clients may reuse a page before revalidating it
    builder_silence_minutes: float = 10.0  # a target with pending jobs and no builder seen
    urgent_catch_up_serials: int = 10_000  # a larger catch-up queues its builds as backlog
    source: tuple[str, ...] = field(default=(), compare=False)
    #: Asked for the upstream when none is set, the first time one is needed (see upstream_url).
    default_upstream: Callable[[], str] | None = field(default=None, compare=False, repr=False)

    @cached_property
    def upstream_url(self) -> str:
        """The upstream simple index: the setting, else pip's index, asked on first use.

        Asking pip takes a subprocess (about 0.1 s of CPU), so commands that never talk to the
        upstream (``targets list``, ``builds``) never ask: benchmarks/cli_startup.py.
        """
        if self.upstream or self.default_upstream is None:
            return self.upstream
        url = self.default_upstream()
        _check_upstream(url)
        return url

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL; the embedded default is SQLite in the data directory."""
        if self.database:
            return self.database
        return f"sqlite:///{self.data_dir / 'wheelfarm.sqlite'}"

    @property
    def www_dir(self) -> Path:
        """The published tree (simple pages, project pages, wheels), served as static files."""
        return self.data_dir / "www"

    @property
    def wheel_dir(self) -> Path:
        """Where wheels are stored: inside the published tree, so they are served as they are."""
        return self.www_dir / "files"

    @property
    def staging_dir(self) -> Path:
        """Where uploads stream to before intake: in the data directory, out of the tree."""
        return self.data_dir / "staging"

    @property
    def withdrawn_dir(self) -> Path:
        """Where wheels of deleted projects and releases are kept, out of the published tree."""
        return self.data_dir / "withdrawn"

    @property
    def site_url(self) -> str:
        """The index's public address (for absolute URLs, as in the sitemap), no trailing slash."""
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def upstream_base(self) -> str:
        """The upstream's root, where ``/simple/`` and ``/pypi`` hang from."""
        simple = self.upstream_url.rstrip("/")
        if simple.endswith("/simple"):
            return simple[: -len("/simple")]
        return simple

    @property
    def changelog_url(self) -> str:
        """The XML-RPC endpoint: the setting, or ``<base>/pypi`` next to ``<base>/simple/``."""
        if self.changelog:
            return self.changelog
        if not self.upstream_url.rstrip("/").endswith("/simple"):
            raise ConfigError(
                "changelog",
                self.changelog,
                f"cannot derive the XML-RPC changelog URL from upstream {self.upstream_url!r} "
                "(it does not end in /simple/); set 'changelog' explicitly",
            )
        return f"{self.upstream_base}/pypi"

    def distro_of(self, target: str) -> str | None:
        """The distro the ``target_distros`` setting names for a target, if any."""
        return dict(self.target_distros).get(target)

    @property
    def simple_url(self) -> str:
        """The upstream simple index URL with exactly one trailing slash."""
        return self.upstream_url.rstrip("/") + "/"

    def json_api_url(self, project: str) -> str | None:
        """The upstream's JSON API page of a project, when the upstream has the usual layout."""
        if not self.upstream_url.rstrip("/").endswith("/simple"):
            return None
        return f"{self.upstream_base}/pypi/{project}/json"


def _as_str(setting: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(setting, value, "expected a string")
    return value


def _as_names(setting: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(name.strip() for name in value.split(",") if name.strip())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    raise ConfigError(setting, value, "expected a list of project names")


def _as_float(setting: str, value: object) -> float:
    if isinstance(value, bool):
        raise ConfigError(setting, value, "expected a number")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(setting, value, "expected a number") from None
    if not math.isfinite(number):
        raise ConfigError(setting, value, "expected a finite number")
    if number < 0:
        raise ConfigError(setting, value, "must not be negative")
    return number


def _as_int(setting: str, value: object) -> int:
    if isinstance(value, bool | float):  # int(2.5) would quietly be 2
        raise ConfigError(setting, value, "expected a whole number")
    try:
        number: int = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ConfigError(setting, value, "expected a whole number") from None
    if number < 0:
        raise ConfigError(setting, value, "must not be negative")
    return number


def _as_bool(setting: str, value: object) -> bool:
    """A TOML boolean, or 1/0, true/false, yes/no, on/off from the environment."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("1", "true", "yes", "on"):
            return True
        if word in ("0", "false", "no", "off", ""):
            return False
    raise ConfigError(setting, value, "expected true or false (1 or 0)")


def _as_positive_int(setting: str, value: object) -> int:
    number = _as_int(setting, value)
    if number < 1:
        raise ConfigError(setting, value, "must be at least 1")
    return number


def _as_pairs(setting: str, value: object) -> tuple[tuple[str, str], ...]:
    """A TOML table ``{target = "distro"}``, or ``target=distro,target=distro`` from the
    environment; sorted, so equal settings compare equal."""
    if isinstance(value, str):
        items: list[tuple[object, object]] = []
        for part in filter(None, (p.strip() for p in value.split(","))):
            key, sign, item = part.partition("=")
            if not sign:
                raise ConfigError(setting, value, f"expected TARGET=DISTRO, not {part!r}")
            items.append((key.strip(), item.strip()))
    elif isinstance(value, dict):
        items = list(value.items())
    else:
        raise ConfigError(setting, value, "expected a table of target = distro")
    pairs: list[tuple[str, str]] = []
    for target, distro in items:
        if not isinstance(target, str) or not isinstance(distro, str) or not target or not distro:
            raise ConfigError(setting, value, "expected non-empty target and distro names")
        pairs.append((target, distro))
    return tuple(sorted(pairs))


def _as_arches(setting: str, value: object) -> tuple[str, ...]:
    """Architectures in Debian's or Python's spelling (``arm64``, ``armv7l``), as Debian's
    names, each once, in the order given."""
    # The builder's table of architectures, read only where this setting is parsed.
    from wheelfarm.builder.emulation import UnknownArchitecture, debian_arch

    if not isinstance(value, str | list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(setting, value, "expected a list of architectures, e.g. arm64, armhf")
    names = _as_names(setting, value)
    try:
        return tuple(dict.fromkeys(debian_arch(name) for name in names))
    except UnknownArchitecture as error:
        raise ConfigError(setting, value, str(error)) from None


_PARSERS: dict[str, Callable[[str, object], Any]] = {
    "upstream": _as_str,
    "changelog": _as_str,
    "projects": _as_names,
    "database": _as_str,
    "data_dir": lambda setting, value: Path(_as_str(setting, value)),
    "http_timeout": _as_float,
    "max_upstream_response_bytes": _as_int,
    "upstream_deadline_seconds": _as_float,
    "retries": _as_int,
    "retry_wait": _as_float,
    "poll_seconds": _as_float,
    "reconcile_workers": _as_positive_int,
    "missing_page_grace_seconds": _as_float,
    "host": _as_str,
    "port": _as_int,
    "pip_options": _as_names,
    "base_url": _as_str,
    "page_max_age": _as_int,
    "target_distros": _as_pairs,
    "stats_keep_days": _as_int,
    "stats_refresh_seconds": _as_float,
    "stats_page_seconds": _as_float,
    "allow_unsandboxed_builds": _as_bool,
    "max_wheels_per_job": _as_positive_int,
    "public_metrics": _as_bool,
    "monitor_seconds": _as_float,
    "min_free_disk": _as_int,
    "emulate": _as_arches,
    "builder_silence_minutes": _as_float,
    "urgent_catch_up_serials": _as_int,
}


def _parse(values: Mapping[str, object], where: str) -> dict[str, Any]:
    unknown = sorted(set(values) - set(_PARSERS))
    if unknown:
        raise ConfigError(unknown[0], values[unknown[0]], f"unknown setting in {where}")
    return {key: _PARSERS[key](key, value) for key, value in values.items()}


def _read_file(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise ConfigError("config", str(path), f"cannot read: {error.strerror}") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError("config", str(path), f"not valid TOML: {error}") from error
    section = data.get("wheelfarm", data)
    if not isinstance(section, dict):
        raise ConfigError("config", str(path), "[wheelfarm] must be a table")
    stray = sorted(set(data) - {"wheelfarm"}) if "wheelfarm" in data else []
    if stray:
        raise ConfigError(stray[0], data[stray[0]], f"outside the [wheelfarm] table in {path}")
    return section


def _environment(environ: Mapping[str, str]) -> dict[str, object]:
    return {
        key: environ[f"WHEELFARM_{key.upper()}"]
        for key in _PARSERS
        if f"WHEELFARM_{key.upper()}" in environ
    }


_PIP_INDEX_SCRIPT = """
from pip._internal.configuration import Configuration
from pip._internal.models.index import PyPI
from pip._internal.exceptions import ConfigurationError
configuration = Configuration(isolated=False)
configuration.load()
for key in (":env:.index-url", "install.index-url", "global.index-url"):
    try:
        value = configuration.get_value(key)
    except ConfigurationError:
        continue
    if value:
        print(value.split()[0])
        break
else:
    print(PyPI.simple_url)
"""


def pip_index_url(python: str = sys.executable) -> str:
    """The index pip on this machine installs from: its configuration, else its built-in default.

    Asked of pip in a subprocess so that the upstream's address is never written into wheelfarm.
    """
    try:
        result = subprocess.run(
            [python, "-c", _PIP_INDEX_SCRIPT],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise ConfigError(
            "upstream", "", f"not set, and pip could not be asked for its index ({error})"
        ) from error
    url = result.stdout.strip()
    if not url.startswith(("http://", "https://", "file://")):
        raise ConfigError("upstream", url, "pip reported an index URL we cannot use")
    return url


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, object] | None = None,
    *,
    default_upstream: Callable[[], str] = pip_index_url,
) -> Settings:
    """Merge file < environment < flags into one :class:`Settings`.

    ``config_file`` defaults to ``$WHEELFARM_CONFIG`` or ``./wheelfarm.toml`` when it exists.
    """
    environ = os.environ if environ is None else environ
    if config_file is None and environ.get("WHEELFARM_CONFIG"):
        config_file = Path(environ["WHEELFARM_CONFIG"])
    if config_file is None and Path(CONFIG_FILE_NAME).is_file():
        config_file = Path(CONFIG_FILE_NAME)
    merged: dict[str, Any] = {}
    sources: list[str] = []
    if config_file is not None:
        merged.update(_parse(_read_file(config_file), str(config_file)))
        sources.append(str(config_file))
    from_env = _environment(environ)
    if from_env:
        merged.update(_parse(from_env, "the environment"))
        sources.append("environment")
    given = {key: value for key, value in (flags or {}).items() if value is not None}
    if given:
        merged.update(_parse(given, "the command line"))
        sources.append("flags")
    settings = replace(
        Settings(), **merged, source=tuple(sources), default_upstream=default_upstream
    )
    if settings.upstream:
        _check_upstream(settings.upstream)
    return settings


def _check_upstream(url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise ConfigError("upstream", url, "must be an http:// or https:// URL")


SETTING_NAMES: tuple[str, ...] = tuple(
    f.name for f in fields(Settings) if f.name not in ("source", "default_upstream")
)
