"""Targets in words, and builds that lost their extension modules, on the pages and in the JSON.

The renderers are checked with hand-made values (the pages tests' builders); the loader with a
store changed by the real write paths (imports of real wheels, a target's distro set by the
farm's own function).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.publish.states import UPSTREAM, State
from tests.publish.test_pages import ARM, ARM64, cell, demo, dom, release, site, wheel
from wheelfarm.farm.dependencies import set_target_distro
from wheelfarm.farm.jobs import JobState
from wheelfarm.publish import site_pages as pages
from wheelfarm.publish.file_list import WITHOUT_EXTENSIONS
from wheelfarm.publish.loader import load_project, load_site
from wheelfarm.publish.values import BuildCell, WheelFile, without_extension_modules
from wheelfarm.targets import Target

DISTROS = {ARM: "debian-bookworm", ARM64: "debian-bullseye"}
WORDS = {
    ARM: "Python 3.11 \N{MIDDLE DOT} 32-bit ARM \N{MIDDLE DOT} Debian 12",
    ARM64: "Python 3.12 \N{MIDDLE DOT} 64-bit ARM \N{MIDDLE DOT} Debian 11",
}


def test_the_releases_table_names_each_target_in_words_above_its_tag() -> None:
    root = dom(pages.render_project_page(demo(target_distros=DISTROS)))
    heads = root.one("table", "releases").one("thead").all("th")[2:]
    assert [(th.one("span", "target-words").text, th.one("code").text) for th in heads] == [
        (WORDS[ARM], ARM),
        (WORDS[ARM64], ARM64),
    ]
    item = root.all("details", "release-files")[0].one("li", "file")
    assert item.one("span", "target-words").text == WORDS[ARM]


def test_a_target_without_a_distro_is_described_without_one() -> None:
    root = dom(pages.render_project_page(demo()))
    words = [s.text for s in root.one("thead").all("span", "target-words")]
    assert words == [
        "Python 3.11 \N{MIDDLE DOT} 32-bit ARM",
        "Python 3.12 \N{MIDDLE DOT} 64-bit ARM",
    ]


def test_the_home_page_lists_the_targets_in_words() -> None:
    root = dom(pages.render_home(site(target_distros=DISTROS)))
    items = root.one("ul", "targets").all("li")
    assert [(li.attrs["data-target"], li.one("span", "target-words").text) for li in items] == [
        (ARM, WORDS[ARM]),
        (ARM64, WORDS[ARM64]),
    ]


def test_the_project_json_gives_each_target_in_words() -> None:
    document = json.loads(pages.render_project_json(demo(target_distros={ARM: "debian-bookworm"})))
    assert document["target_details"] == {
        ARM: {
            "description": WORDS[ARM],
            "architecture": "32-bit ARM",
            "distro": "debian-bookworm",
            "distro_name": "Debian 12",
        },
        ARM64: {
            "description": "Python 3.12 \N{MIDDLE DOT} 64-bit ARM",
            "architecture": "64-bit ARM",
            "distro": None,
            "distro_name": None,
        },
    }


# --- built without its extension modules ----------------------------------------------------


def pure(project: str, version: str, target: str) -> WheelFile:
    value = wheel(project, version, target)
    value.filename, value.tags = f"{project}-{version}-py3-none-any.whl", ("py3-none-any",)
    return value


BUILT = {t: BuildCell(t, JobState.BUILT, None, 1) for t in (ARM, ARM64)}


@pytest.mark.parametrize(
    ("files", "flagged"),
    [
        # one target compiled it, the other gave only a pure wheel: that one is flagged
        ((wheel("demo", "1.0", ARM), pure("demo", "1.0", ARM64)), {ARM64}),
        # a pure project everywhere: nothing is missing
        ((pure("demo", "1.0", ARM),), set()),
        # both compiled it
        ((wheel("demo", "1.0", ARM), wheel("demo", "1.0", ARM64)), set()),
        # a target with both a platform and a pure wheel lacks nothing
        ((wheel("demo", "1.0", ARM), pure("demo", "1.0", ARM)), set()),
        # only one target built at all, a platform wheel
        ((wheel("demo", "1.0", ARM),), set()),
    ],
)
def test_a_pure_wheel_beside_another_targets_platform_wheel_is_flagged(
    files: tuple[WheelFile, ...], flagged: set[str]
) -> None:
    assert without_extension_modules(release("1.0", BUILT, files)) == flagged


def test_the_page_and_the_json_flag_a_build_without_its_extension_modules() -> None:
    files = (wheel("demo", "1.0", ARM), pure("demo", "1.0", ARM64))
    project = demo(releases=(release("1.0", BUILT, files),))
    root = dom(pages.render_project_page(project))
    lost = cell(root, "1.0", ARM64)
    assert lost.attrs["data-without-extensions"] == "true"
    assert lost.one("span", "without-extensions").text == WITHOUT_EXTENSIONS
    assert "data-without-extensions" not in cell(root, "1.0", ARM).attrs
    items = {li.attrs["data-target"]: li for li in root.all("li", "file")}
    assert items[ARM64].one("div", "without-extensions").one("dd").text == WITHOUT_EXTENSIONS
    assert items[ARM].all("div", "without-extensions") == []

    document = json.loads(pages.render_project_json(project))["releases"]["1.0"]
    assert {t: b["without_extension_modules"] for t, b in document["builds"].items()} == {
        ARM: False,
        ARM64: True,
    }
    assert {f["target"]: f["without_extension_modules"] for f in document["files"]} == {
        ARM: False,
        ARM64: True,
    }


# --- from the store -------------------------------------------------------------------------

AARCH64 = Target.parse("cp311-cp311-linux_aarch64")
ARMV7 = Target.parse("cp311-cp311-linux_armv7l")


@pytest.fixture
def state(engine: Engine, tmp_path: Path) -> State:
    return State(engine, tmp_path)


def test_loaded_projects_and_the_site_carry_the_targets_distros(state: State) -> None:
    state.target(AARCH64)
    state.target(ARMV7)
    with state.engine.begin() as connection:
        set_target_distro(connection, AARCH64.name, "debian-bookworm")
    state.release("foo", "1.0")
    with state.engine.connect() as connection:
        project = load_project(connection, "foo", upstream_simple_url=UPSTREAM)
        home = load_site(connection)
    assert project is not None
    assert project.target_distros == {AARCH64.name: "debian-bookworm"}
    assert home.target_distros == {AARCH64.name: "debian-bookworm"}
    document = json.loads(pages.render_project_json(project))
    assert document["target_details"][AARCH64.name]["description"] == (
        "Python 3.11 \N{MIDDLE DOT} 64-bit ARM \N{MIDDLE DOT} Debian 12"
    )


def test_a_stored_pure_wheel_beside_another_targets_platform_wheel_is_flagged(
    state: State,
) -> None:
    state.target(AARCH64)
    state.target(ARMV7)
    state.release("foo", "1.0")
    state.import_wheel("foo-1.0-cp311-cp311-linux_armv7l.whl")  # armv7l compiled it
    state.import_wheel("foo-1.0-py3-none-any.whl")  # goes to the first target: aarch64
    with state.engine.connect() as connection:
        project = load_project(connection, "foo", upstream_simple_url=UPSTREAM)
    assert project is not None
    (only,) = project.releases
    assert {f.filename: f.target for f in only.files} == {
        "foo-1.0-cp311-cp311-linux_armv7l.whl": ARMV7.name,
        "foo-1.0-py3-none-any.whl": AARCH64.name,
    }
    assert without_extension_modules(only) == {AARCH64.name}
    document = json.loads(pages.render_project_json(project))["releases"]["1.0"]
    assert [f["without_extension_modules"] for f in document["files"]] == [False, True]
