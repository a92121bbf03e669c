"""Targets in words: what the index's pages say beside a target's name."""

from __future__ import annotations

import pytest

from wheelfarm.targets import architecture_words, describe_target, distro_words, machine_of

DOT = " \N{MIDDLE DOT} "


@pytest.mark.parametrize(
    ("name", "distro", "words"),
    [
        ("cp311-cp311-linux_aarch64", "debian-bookworm", "Python 3.11 · 64-bit ARM · Debian 12"),
        ("cp311-cp311-linux_armv7l", "debian-bookworm", "Python 3.11 · 32-bit ARM · Debian 12"),
        ("cp39-cp39-linux_armv7l", "debian-bullseye", "Python 3.9 · 32-bit ARM · Debian 11"),
        ("cp312-cp312-linux_x86_64", None, "Python 3.12 · 64-bit x86"),
        ("cp310-cp310-linux_i686", "debian-trixie", "Python 3.10 · 32-bit x86 · Debian 13"),
        ("cp313-cp313t-linux_x86_64", None, "Python 3.13 (free-threaded) · 64-bit x86"),
        ("cp311-cp311-manylinux_2_17_aarch64", None, "Python 3.11 · 64-bit ARM"),
        ("cp311-cp311-linux_ppc64le", None, "Python 3.11 · 64-bit POWER (little-endian)"),
        # a distro or a platform we have no words for is shown as it is
        (
            "cp311-cp311-linux_armv7l",
            "raspios-bookworm",
            "Python 3.11 · 32-bit ARM · raspios-bookworm",
        ),
        ("cp311-cp311-linux_mips", None, "Python 3.11 · linux_mips"),
        # not a target's name at all: the name itself
        ("not a target", "debian-bookworm", "not a target"),
    ],
)
def test_a_target_is_described_by_its_python_architecture_and_distro(
    name: str, distro: str | None, words: str
) -> None:
    assert describe_target(name, distro) == words.replace(" · ", DOT)


@pytest.mark.parametrize(
    ("platform", "machine", "words"),
    [
        ("linux_x86_64", "x86_64", "64-bit x86"),
        ("linux_aarch64", "aarch64", "64-bit ARM"),
        ("manylinux2014_armv7l", "armv7l", "32-bit ARM"),
        ("musllinux_1_2_i686", "i686", "32-bit x86"),
        ("linux_ppc64", "ppc64", "64-bit POWER (big-endian)"),
        ("linux_ppc64le", "ppc64le", "64-bit POWER (little-endian)"),
        ("win_amd64", None, "win_amd64"),
    ],
)
def test_a_platform_tag_is_read_for_its_machine(
    platform: str, machine: str | None, words: str
) -> None:
    assert (machine_of(platform), architecture_words(platform)) == (machine, words)


@pytest.mark.parametrize(
    ("distro", "words"),
    [
        ("debian-bookworm", "Debian 12"),
        ("debian-bookworm-base", "Debian 12"),  # the shipped base list's name
        ("debian-bookworm-slim", "Debian 12 (slim)"),
        ("debian-bullseye", "Debian 11"),
        ("ubuntu-noble", "Ubuntu 24.04"),
        ("debian-sid", "debian-sid"),
        ("alpine", "alpine"),
    ],
)
def test_a_distro_is_named_by_its_release_number(distro: str, words: str) -> None:
    assert distro_words(distro) == words
