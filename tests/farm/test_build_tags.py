"""Giving a built wheel a build tag (the builder's half of a rebuild), checked with installer."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest
from installer.sources import WheelFile

from wheelfarm.builder.build_tags import (
    BuildTagError,
    retag_wheel,
    tagged_filename,
    wheel_build_line,
)
from wheelfarm.names import build_number

WHEEL = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n\n"


def _row(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}\n"


def make_wheel(
    directory: Path, name: str = "demo-1.0-py3-none-any.whl", *, record: bool = True
) -> Path:
    members = {
        "demo/__init__.py": b"VALUE = 1\n",
        "demo-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
        "demo-1.0.dist-info/WHEEL": WHEEL.encode(),
    }
    path = directory / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
        if record:
            rows = "".join(_row(m, d) for m, d in members.items())
            archive.writestr("demo-1.0.dist-info/RECORD", rows + "demo-1.0.dist-info/RECORD,,\n")
    return path


@pytest.mark.parametrize(
    ("filename", "number", "expected"),
    [
        ("demo-1.0-py3-none-any.whl", 1, "demo-1.0-1-py3-none-any.whl"),  # the first rebuild
        ("demo-1.0-1-py3-none-any.whl", 2, "demo-1.0-2-py3-none-any.whl"),  # a tag is replaced
        ("demo-1.0-3-py3-none-any.whl", 0, "demo-1.0-py3-none-any.whl"),  # 0: no tag at all
        (
            "demo_c-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            12,
            "demo_c-1.0-12-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        ),  # compressed tag sets stay as they are
    ],
)
def test_tagged_file_names_carry_the_number_where_the_spec_puts_it(
    filename: str, number: int, expected: str
) -> None:
    assert tagged_filename(filename, number) == expected
    assert build_number(expected) == number


def test_a_retagged_wheel_has_the_tag_in_name_and_wheel_file_and_a_valid_record(
    tmp_path: Path,
) -> None:
    original = make_wheel(tmp_path)
    with zipfile.ZipFile(original) as archive:
        before = {info.filename: archive.read(info) for info in archive.infolist()}
    rebuilt = retag_wheel(original, 7)
    assert rebuilt.name == "demo-1.0-7-py3-none-any.whl"
    assert not original.exists()
    with zipfile.ZipFile(rebuilt) as archive:
        assert wheel_build_line(archive) == "7"
        after = {info.filename: archive.read(info) for info in archive.infolist()}
        archive.filename = rebuilt.name
        WheelFile(archive).validate_record(validate_contents=True)  # raises if RECORD is wrong
    assert list(after) == list(before)  # same members, same order
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"demo-1.0.dist-info/WHEEL", "demo-1.0.dist-info/RECORD"}
    assert after["demo-1.0.dist-info/WHEEL"].decode().endswith("Tag: py3-none-any\nBuild: 7\n")


def test_build_number_zero_leaves_the_wheel_alone(tmp_path: Path) -> None:
    original = make_wheel(tmp_path)
    data = original.read_bytes()
    assert retag_wheel(original, 0) == original
    assert original.read_bytes() == data


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no .dist-info/WHEEL or RECORD"),  # a wheel without RECORD
        (b"not a zip", "not a zip file"),
    ],
)
def test_a_wheel_that_cannot_be_tagged_is_an_error_naming_it(
    tmp_path: Path, content: bytes | None, problem: str
) -> None:
    path = make_wheel(tmp_path, record=False)
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BuildTagError, match=problem):
        retag_wheel(path, 1)


@pytest.mark.parametrize(
    ("filename", "number"),
    [
        ("demo-1.0-py3-none-any.whl", 0),
        ("demo-1.0-2-py3-none-any.whl", 2),
        ("demo-1.0-2abc-py3-none-any.whl", 2),  # the number of a tag with a suffix
        ("demo-1.0.tar.gz", 0),  # not a wheel
    ],
)
def test_build_number_reads_the_file_names_tag(filename: str, number: int) -> None:
    assert build_number(filename) == number
