"""Settings: file < environment < flags, every value checked, URLs derived from the upstream."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from wheelfarm.config import Settings, load_settings, pip_index_url
from wheelfarm.errors import ConfigError

DEFAULT_UPSTREAM = "http://127.0.0.1:9/simple/"


def default_upstream() -> str:
    return DEFAULT_UPSTREAM


@pytest.fixture(autouse=True)
def in_empty_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ./wheelfarm.toml of the developer's is picked up."""
    monkeypatch.chdir(tmp_path)


def load(
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, object] | None = None,
) -> Settings:
    return load_settings(config_file, environ or {}, flags, default_upstream=default_upstream)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_with_no_file_environment_or_flags() -> None:
    settings = load()
    assert settings == Settings()
    assert settings.upstream_url == DEFAULT_UPSTREAM
    assert settings.source == ()
    assert (settings.retries, settings.http_timeout, settings.projects) == (8, 30.0, ())


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = write(tmp_path, 'database = "sqlite:///from-file"\nretries = 1\n')
    environ = {"WHEELFARM_DATABASE": "sqlite:///from-env", "WHEELFARM_RETRIES": "2"}
    flags = {"database": "sqlite:///from-flags", "retries": None}  # None: flag not given

    assert load(config).database == "sqlite:///from-file"
    assert load(config, environ).database == "sqlite:///from-env"
    settings = load(config, environ, flags)
    assert settings.database == "sqlite:///from-flags"
    assert settings.retries == 2
    assert settings.source == (str(config), "environment", "flags")


def test_config_file_named_by_the_environment_is_read(tmp_path: Path) -> None:
    config = write(tmp_path, "retries = 3\n")
    assert load(environ={"WHEELFARM_CONFIG": str(config)}).retries == 3


def test_wheelfarm_toml_in_the_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / "wheelfarm.toml").write_text("retries = 4\n", encoding="utf-8")
    assert load().retries == 4


@pytest.mark.parametrize(
    "text",
    [
        '[wheelfarm]\nupstream = "http://127.0.0.1:8/simple/"\nretries = 5\n',
        'upstream = "http://127.0.0.1:8/simple/"\nretries = 5\n',
    ],
    ids=["wheelfarm-table", "top-level"],
)
def test_file_settings_in_a_table_or_at_top_level(tmp_path: Path, text: str) -> None:
    settings = load(write(tmp_path, text))
    assert (settings.upstream, settings.retries) == ("http://127.0.0.1:8/simple/", 5)


@pytest.mark.parametrize(
    ("environ", "flags", "expected"),
    [
        ({"WHEELFARM_PROJECTS": "a, b,,c"}, None, ("a", "b", "c")),
        ({"WHEELFARM_PROJECTS": ""}, None, ()),
        (None, {"projects": [" a ", "", "b"]}, ("a", "b")),
    ],
)
def test_projects_are_a_comma_separated_list(
    environ: dict[str, str] | None, flags: dict[str, object] | None, expected: tuple[str, ...]
) -> None:
    assert load(environ=environ, flags=flags).projects == expected


def test_numbers_from_the_environment_are_parsed() -> None:
    settings = load(
        environ={
            "WHEELFARM_HTTP_TIMEOUT": "2.5",
            "WHEELFARM_RETRIES": "3",
            "WHEELFARM_DATA_DIR": "elsewhere",
            "WHEELFARM_MISSING_PAGE_GRACE_SECONDS": "90",
        }
    )
    assert (
        settings.http_timeout,
        settings.retries,
        settings.data_dir,
        settings.missing_page_grace_seconds,
    ) == (2.5, 3, Path("elsewhere"), 90.0)


@pytest.mark.parametrize(
    ("text", "setting", "reason"),
    [
        ("colour = 'blue'\n", "colour", "unknown setting"),  # a key we do not have
        ("[wheelfarm]\nretrys = 3\n", "retrys", "unknown setting"),  # a misspelt one
        ("[other]\nx = 1\n", "other", "unknown setting"),  # another table at top level
        ("retries = \n", "config", "not valid TOML"),  # no value
        ("wheelfarm = 3\n", "config", "must be a table"),  # [wheelfarm] not a table
        ("upstream = 3\n", "upstream", "expected a string"),  # a number for a URL
        ("projects = ['a', 1]\n", "projects", "list of project names"),  # not all names
    ],
)
def test_bad_file_is_a_config_error(tmp_path: Path, text: str, setting: str, reason: str) -> None:
    config = write(tmp_path, text)
    with pytest.raises(ConfigError, match=reason) as caught:
        load(config)
    assert caught.value.setting == setting
    if reason == "unknown setting":
        assert str(config) in str(caught.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read") as caught:
        load(tmp_path / "absent.toml")
    assert caught.value.setting == "config"


@pytest.mark.parametrize(
    ("environ", "setting"),
    [
        ({"WHEELFARM_RETRIES": "many"}, "retries"),  # not a number
        ({"WHEELFARM_RETRIES": "2.5"}, "retries"),  # not whole
        ({"WHEELFARM_RETRIES": "-1"}, "retries"),  # negative
        ({"WHEELFARM_HTTP_TIMEOUT": "soon"}, "http_timeout"),  # not a number
        ({"WHEELFARM_POLL_SECONDS": "-0.5"}, "poll_seconds"),  # negative
        ({"WHEELFARM_MISSING_PAGE_GRACE_SECONDS": "-1"}, "missing_page_grace_seconds"),  # negative
        ({"WHEELFARM_RETRY_WAIT": ""}, "retry_wait"),  # empty
        pytest.param(
            {"WHEELFARM_HTTP_TIMEOUT": "nan"},
            "http_timeout",
        ),  # not a number, though float() reads it
    ],
)
def test_bad_number_in_the_environment_is_a_config_error(
    environ: dict[str, str], setting: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(environ=environ)
    assert caught.value.setting == setting


@pytest.mark.parametrize(
    ("text", "setting"),
    [
        ("retries = true\n", "retries"),  # a boolean is not a count
        ("retries = 'x'\n", "retries"),  # not a number
        ("poll_seconds = -1\n", "poll_seconds"),  # negative
        pytest.param(
            "retries = 2.5\n",
            "retries",
        ),  # not whole
        pytest.param(
            "http_timeout = true\n",
            "http_timeout",
        ),  # a boolean is not a duration
    ],
)
def test_bad_number_in_the_file_is_a_config_error(tmp_path: Path, text: str, setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, text))
    assert caught.value.setting == setting


@pytest.mark.parametrize(
    "upstream",
    [
        "ftp://127.0.0.1/simple/",  # not http
        "file:///srv/simple/",  # pip may use one; we cannot follow it
        "127.0.0.1/simple/",  # no scheme
    ],
)
def test_non_http_upstream_is_a_config_error(upstream: str) -> None:
    with pytest.raises(ConfigError, match="http") as caught:
        load(flags={"upstream": upstream})
    assert (caught.value.setting, caught.value.value) == ("upstream", upstream)


def test_non_http_default_upstream_is_a_config_error_when_the_upstream_is_needed() -> None:
    settings = load_settings(None, {}, None, default_upstream=lambda: "file:///srv/simple/")
    with pytest.raises(ConfigError, match="http"):
        _ = settings.simple_url


def test_default_upstream_is_asked_once_and_only_when_the_upstream_is_needed() -> None:
    asked: list[str] = []

    def ask() -> str:
        asked.append(DEFAULT_UPSTREAM)
        return DEFAULT_UPSTREAM

    settings = load_settings(None, {}, None, default_upstream=ask)
    assert (settings.database_url, settings.site_url, asked) == (
        "sqlite:///wheelfarm-data/wheelfarm.sqlite",
        "http://127.0.0.1:8080",
        [],
    )
    assert (settings.simple_url, settings.changelog_url) == (
        DEFAULT_UPSTREAM,
        "http://127.0.0.1:9/pypi",
    )
    assert asked == [DEFAULT_UPSTREAM]


def test_default_upstream_is_only_asked_when_no_upstream_is_set() -> None:
    def refuse() -> str:
        raise AssertionError("default_upstream was called")

    settings = load_settings(
        None, {"WHEELFARM_UPSTREAM": "https://127.0.0.1/simple/"}, None, default_upstream=refuse
    )
    assert settings.upstream_url == "https://127.0.0.1/simple/"


@pytest.mark.parametrize(
    ("upstream", "changelog", "expected"),
    [
        ("http://127.0.0.1:9/simple/", "", "http://127.0.0.1:9/pypi"),
        ("http://127.0.0.1:9/simple", "", "http://127.0.0.1:9/pypi"),  # no trailing slash
        ("http://127.0.0.1:9/mirror/simple/", "", "http://127.0.0.1:9/mirror/pypi"),
        ("http://127.0.0.1:9/simple/", "http://127.0.0.1:7/rpc", "http://127.0.0.1:7/rpc"),
        ("http://127.0.0.1:9/index/", "http://127.0.0.1:7/rpc", "http://127.0.0.1:7/rpc"),
    ],
)
def test_changelog_url_is_derived_unless_set(upstream: str, changelog: str, expected: str) -> None:
    assert load(flags={"upstream": upstream, "changelog": changelog}).changelog_url == expected


def test_changelog_url_cannot_be_derived_from_an_upstream_not_ending_in_simple() -> None:
    settings = load(flags={"upstream": "http://127.0.0.1:9/index/"})  # loading is fine
    with pytest.raises(ConfigError, match="set 'changelog' explicitly") as caught:
        _ = settings.changelog_url
    assert caught.value.setting == "changelog"


@pytest.mark.parametrize(
    ("upstream", "simple_url", "json_api_url"),
    [
        (
            "http://127.0.0.1:9/simple",
            "http://127.0.0.1:9/simple/",
            "http://127.0.0.1:9/pypi/foo/json",
        ),
        (
            "http://127.0.0.1:9/simple//",
            "http://127.0.0.1:9/simple/",
            "http://127.0.0.1:9/pypi/foo/json",
        ),
        ("http://127.0.0.1:9/index/", "http://127.0.0.1:9/index/", None),  # unusual layout
    ],
)
def test_simple_and_json_api_urls(upstream: str, simple_url: str, json_api_url: str | None) -> None:
    settings = load(flags={"upstream": upstream})
    assert settings.simple_url == simple_url
    assert settings.json_api_url("foo") == json_api_url


def test_database_url_defaults_to_sqlite_in_the_data_directory(tmp_path: Path) -> None:
    assert load().database_url == "sqlite:///wheelfarm-data/wheelfarm.sqlite"
    data_dir = tmp_path / "data"
    settings = load(flags={"data_dir": str(data_dir)})
    assert settings.database_url == f"sqlite:///{data_dir / 'wheelfarm.sqlite'}"


def test_database_setting_wins_over_the_default() -> None:
    url = "postgresql://127.0.0.1/wheelfarm"
    assert load(environ={"WHEELFARM_DATABASE": url}).database_url == url


def test_pip_index_url_is_a_url_pip_can_use() -> None:
    assert pip_index_url().startswith(("http://", "https://", "file://"))


def test_pip_index_url_follows_pips_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:1/simple/")
    assert pip_index_url() == "http://127.0.0.1:1/simple/"


def test_pip_index_url_reports_a_python_that_cannot_be_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pip could not be asked") as caught:
        pip_index_url(str(tmp_path / "no-such-python"))
    assert caught.value.setting == "upstream"


def test_target_distros_from_a_table_or_the_environment(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        "[wheelfarm]\nretries = 1\n"
        '[wheelfarm.target_distros]\n"cp311-cp311-linux_armv7l" = "lite"\n',
    )
    settings = load(config)
    assert settings.distro_of("cp311-cp311-linux_armv7l") == "lite"
    assert settings.distro_of("cp311-cp311-linux_aarch64") is None
    environ = {"WHEELFARM_TARGET_DISTROS": "b-target=two, a-target=one"}
    assert load(None, environ).target_distros == (("a-target", "one"), ("b-target", "two"))


@pytest.mark.parametrize("value", ["cp311-cp311-linux_armv7l", "x=", "=y"])
def test_a_malformed_target_distro_names_the_setting(value: str) -> None:
    with pytest.raises(ConfigError, match="target_distros"):
        load(None, {"WHEELFARM_TARGET_DISTROS": value})


@pytest.mark.parametrize(
    ("environ", "allowed"),
    [
        ({}, False),  # refused unless the operator says so
        ({"WHEELFARM_ALLOW_UNSANDBOXED_BUILDS": "1"}, True),
        ({"WHEELFARM_ALLOW_UNSANDBOXED_BUILDS": "yes"}, True),
        ({"WHEELFARM_ALLOW_UNSANDBOXED_BUILDS": "0"}, False),
        ({"WHEELFARM_ALLOW_UNSANDBOXED_BUILDS": "False"}, False),
    ],
)
def test_unsandboxed_builds_are_allowed_only_explicitly(
    environ: dict[str, str], allowed: bool
) -> None:
    assert load(environ=environ).allow_unsandboxed_builds is allowed


@pytest.mark.parametrize(
    ("environ", "setting"),
    [
        ({"WHEELFARM_ALLOW_UNSANDBOXED_BUILDS": "maybe"}, "allow_unsandboxed_builds"),
        ({"WHEELFARM_MAX_WHEELS_PER_JOB": "0"}, "max_wheels_per_job"),
        ({"WHEELFARM_MAX_WHEELS_PER_JOB": "many"}, "max_wheels_per_job"),
    ],
)
def test_bad_farm_safety_settings_are_config_errors(environ: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(environ=environ)
    assert caught.value.setting == setting


def test_staging_is_in_the_data_directory_outside_the_published_tree(tmp_path: Path) -> None:
    settings = load(flags={"data_dir": str(tmp_path)})
    assert settings.staging_dir.parent == tmp_path
    assert not settings.staging_dir.is_relative_to(settings.www_dir)
    assert load(environ={"WHEELFARM_MAX_WHEELS_PER_JOB": "3"}).max_wheels_per_job == 3


@pytest.mark.parametrize(
    ("source", "value", "arches"),
    [
        ("file", 'emulate = ["arm64"]', ("arm64",)),
        ("file", 'emulate = ["aarch64", "armv7l", "arm64"]', ("arm64", "armhf")),
        ("file", "emulate = []", ()),
        ("environment", "arm64,armhf", ("arm64", "armhf")),
        ("environment", " armv7l , ", ("armhf",)),
        ("environment", "", ()),  # empty: emulation off
    ],
)
def test_emulate_takes_architectures_in_either_spelling(
    tmp_path: Path, source: str, value: str, arches: tuple[str, ...]
) -> None:
    if source == "file":
        settings = load(write(tmp_path, f"[wheelfarm]\n{value}\n"))
    else:
        settings = load(None, {"WHEELFARM_EMULATE": value})
    assert settings.emulate == arches


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('emulate = ["sparc"]', "architecture 'sparc' is not one of"),
        ('emulate = "mips,arm64"', "architecture 'mips' is not one of"),
        ("emulate = [1]", "expected a list of architectures"),
        ("emulate = true", "expected a list of architectures"),
    ],
)
def test_a_bad_emulate_setting_names_the_setting_and_the_value(
    tmp_path: Path, text: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, f"[wheelfarm]\n{text}\n"))
    assert caught.value.setting == "emulate" and reason in caught.value.reason
