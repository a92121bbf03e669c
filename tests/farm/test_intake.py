"""Intake: what a builder's upload must be to be published, and how it is stored."""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.tags import Tag

from tests.fixtures.wheels import record_for
from wheelfarm.farm.intake import (
    AcceptedWheel,
    IntakeError,
    IntakeLimits,
    inspect_wheel,
    store_wheel,
)

PURE = "foo-1.0-py3-none-any.whl"
CP311 = "foo-1.0-cp311-cp311-linux_x86_64.whl"
CP311_TAG = Tag("cp311", "cp311", "linux_x86_64")


def metadata_for(
    name: str,
    version: str,
    *,
    requires_python: str | None = None,
    requires_dist: tuple[str, ...] = (),
) -> bytes:
    """A Metadata-Version 2.1 METADATA file, as a build backend writes it."""
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python is not None:
        lines.append(f"Requires-Python: {requires_python}")
    lines.extend(f"Requires-Dist: {requirement}" for requirement in requires_dist)
    return ("\n".join(lines) + "\n\nThe description.\n").encode()


WHEEL = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def member_info(name: str, compression: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
    """A member with a fixed timestamp, so a wheel's bytes (and a failing example) repeat."""
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = compression
    return info


def make_wheel(
    tmp_path: Path,
    filename: str,
    members: dict[str, bytes] | None = None,
    *,
    metadata: bytes | Literal["default"] | None = "default",
    wheel: bool = True,
    dist_info: str | None = None,
    symlink: str | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
    record: dict[str, bytes] | bool = True,
) -> Path:
    """Write a wheel with a proper dist-info to a spool path that is not named after it.

    ``WHEEL`` names the file name's build tag, if it has one. ``metadata=None`` and
    ``wheel=False`` leave those files out; ``dist_info`` renames the
    directory; ``symlink`` adds a symlink member of that name. ``members`` may repeat a name.
    ``RECORD`` lists every member with its hash, unless ``record`` is False; a dict there
    replaces the recorded bytes of those members (a RECORD that lies).
    """
    name, version = filename.split("-")[:2]
    info_dir = dist_info or f"{name}-{version}.dist-info"
    path = tmp_path / "upload.whl"
    written: dict[str, bytes] = {}
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in (members or {}).items():
            archive.writestr(member_info(member, compression), data)
            written[member] = data
        if metadata == "default":
            metadata = metadata_for(name, version)
        if metadata is not None:
            archive.writestr(member_info(f"{info_dir}/METADATA", compression), metadata)
            written[f"{info_dir}/METADATA"] = metadata
        if wheel:
            parts = filename.removesuffix(".whl").split("-")
            build = f"Build: {parts[2]}\n".encode() if len(parts) == 6 else b""  # as the tag
            archive.writestr(member_info(f"{info_dir}/WHEEL", compression), WHEEL + build)
            written[f"{info_dir}/WHEEL"] = WHEEL + build
        if record is not False:
            lies = record if isinstance(record, dict) else {}
            listed = record_for({**written, **lies}, info_dir)
            archive.writestr(member_info(f"{info_dir}/RECORD", compression), listed)
        if symlink is not None:
            link = member_info(symlink)
            link.create_system = 3  # Unix, so external_attr holds a mode
            link.external_attr = 0o120777 << 16
            archive.writestr(link, "/etc/passwd")
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def inspect(path: Path, filename: str = PURE, **overrides: object) -> AcceptedWheel:
    """inspect_wheel with the job's answers for ``foo 1.0`` unless a test says otherwise."""
    arguments: dict[str, object] = {
        "filename": filename,
        "project": "foo",
        "version": "1.0",
        "accepted_tags": None,
        "expected_sha256": None,
        "expected_size": None,
    }
    arguments.update(overrides)
    return inspect_wheel(path, **arguments)  # type: ignore[arg-type]


def test_a_valid_pure_wheel_is_accepted_with_its_metadata(tmp_path: Path) -> None:
    metadata = metadata_for(
        "Foo", "1.0", requires_python=">=3.9", requires_dist=("bar>=2", 'baz; extra == "x"')
    )
    path = make_wheel(tmp_path, PURE, {"foo/__init__.py": b"x = 1\n"}, metadata=metadata)

    accepted = inspect(
        path,
        project="Foo",
        expected_sha256=sha256_of(path).upper(),  # hex digests compare without case
        expected_size=path.stat().st_size,
    )

    assert accepted == AcceptedWheel(
        filename=PURE,
        sha256=sha256_of(path),
        size=path.stat().st_size,
        project="foo",  # type: ignore[arg-type]
        version="1.0",
        tags=frozenset({Tag("py3", "none", "any")}),
        requires_python=">=3.9",
        requires_dist=("bar>=2", 'baz; extra == "x"'),
        metadata=metadata,
    )


def test_a_version_is_compared_as_a_pep_440_version(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "foo-1.0.0-py3-none-any.whl", metadata=metadata_for("foo", "1"))
    accepted = inspect(path, "foo-1.0.0-py3-none-any.whl", version="1.0")
    assert accepted.version == "1.0.0"
    assert accepted.requires_python is None
    assert accepted.requires_dist == ()


def test_a_platform_wheel_is_accepted_when_the_target_takes_its_tag(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, CP311, {"foo/_speedups.so": b"\x7fELF"})
    accepted = inspect(path, CP311, accepted_tags=[Tag("py3", "none", "any"), CP311_TAG])
    assert accepted.tags == frozenset({CP311_TAG})


@dataclass
class Upload:
    """One upload and the job's expectations; the defaults make a valid ``foo 1.0`` wheel."""

    filename: str = PURE
    members: dict[str, bytes] = field(default_factory=dict)
    metadata: bytes | Literal["default"] | None = "default"
    wheel: bool = True
    dist_info: str | None = None
    symlink: str | None = None
    content: bytes | None = None  # raw bytes instead of a zip
    appended: tuple[tuple[str, bytes], ...] = ()  # added afterwards, names may repeat
    compression: int = zipfile.ZIP_DEFLATED
    record: dict[str, bytes] | bool = True
    version: str = "1.0"
    accepted_tags: list[Tag] | None = None
    expected_sha256: str | None = None
    expected_size: int | None = None
    limits: IntakeLimits = field(default_factory=IntakeLimits)

    def write(self, tmp_path: Path) -> Path:
        if self.content is not None:
            path = tmp_path / "upload.whl"
            path.write_bytes(self.content)
            return path
        path = make_wheel(
            tmp_path,
            self.filename,
            self.members,
            metadata=self.metadata,
            wheel=self.wheel,
            dist_info=self.dist_info,
            symlink=self.symlink,
            compression=self.compression,
            record=self.record,
        )
        with warnings.catch_warnings(), zipfile.ZipFile(path, "a") as archive:
            warnings.simplefilter("ignore")  # zipfile warns when a name repeats: that is the point
            for member, data in self.appended:
                archive.writestr(member_info(member), data)
        return path


@pytest.mark.parametrize(
    ("upload", "word"),
    [
        # The builder reported another hash: the bytes changed on the way.
        pytest.param(Upload(expected_sha256="0" * 64), "sha256", id="sha256_mismatch"),
        # The builder reported another size.
        pytest.param(Upload(expected_size=1), "size", id="size_mismatch"),
        # The whole file is above the limit, whatever it holds.
        pytest.param(
            Upload(limits=IntakeLimits(max_wheel_bytes=100)), "file is too big", id="oversize_file"
        ),
        # Random bytes are not a zip.
        pytest.param(Upload(content=os.urandom(4096)), "zip", id="not_a_zip"),
        # The file name is another project's.
        pytest.param(
            Upload(filename="bar-1.0-py3-none-any.whl"), "project", id="wrong_project_in_filename"
        ),
        # The file name is another release's.
        pytest.param(
            Upload(filename="foo-2.0-py3-none-any.whl"), "version", id="wrong_version_in_filename"
        ),
        # No tags: not a wheel file name.
        pytest.param(Upload(filename="foo-1.0.whl"), "invalid", id="invalid_wheel_filename"),
        # A file name with a path in it would be stored outside the directory.
        pytest.param(
            Upload(filename="../foo-1.0-py3-none-any.whl"), "separator", id="filename_with_a_path"
        ),
        # Built for Windows, uploaded for a Linux target.
        pytest.param(
            Upload(
                filename="foo-1.0-cp311-cp311-win_amd64.whl",
                accepted_tags=[CP311_TAG, Tag("py3", "none", "any")],
            ),
            "tag",
            id="tag_not_accepted_by_the_target",
        ),
        # No METADATA, so nothing to serve as PEP 658 metadata.
        pytest.param(Upload(metadata=None), "METADATA", id="metadata_missing"),
        # METADATA names another project.
        pytest.param(Upload(metadata=metadata_for("bar", "1.0")), "Name", id="metadata_name"),
        # METADATA names another version.
        pytest.param(Upload(metadata=metadata_for("foo", "2.0")), "Version", id="metadata_version"),
        # METADATA without a Name at all.
        pytest.param(Upload(metadata=b"Version: 1.0\n\n"), "Name", id="metadata_without_a_name"),
        # A Requires-Python installers cannot parse.
        pytest.param(
            Upload(metadata=metadata_for("foo", "1.0", requires_python=">=3.x")),
            "Requires-Python",
            id="invalid_requires_python",
        ),
        # A Requires-Dist installers cannot parse.
        pytest.param(
            Upload(metadata=metadata_for("foo", "1.0", requires_dist=("bar >>= 1",))),
            "Requires-Dist",
            id="invalid_requires_dist",
        ),
        # METADATA larger than we read into memory.
        pytest.param(
            Upload(limits=IntakeLimits(max_metadata_bytes=10)), "METADATA", id="metadata_too_big"
        ),
        # Installers refuse a wheel with two dist-info directories; so do we.
        pytest.param(
            Upload(members={"bar-1.0.dist-info/METADATA": metadata_for("bar", "1.0")}),
            "more than one",
            id="two_dist_info_dirs",
        ),
        # The dist-info directory is another project's.
        pytest.param(Upload(dist_info="bar-1.0.dist-info"), "match", id="dist_info_mismatch"),
        # No WHEEL file: not a wheel.
        pytest.param(Upload(wheel=False), "WHEEL", id="wheel_missing"),
        # An absolute member would be written anywhere on the installing machine.
        pytest.param(Upload(members={"/etc/cron.d/foo": b""}), "absolute", id="absolute_member"),
        # A drive-qualified member is absolute on Windows.
        pytest.param(Upload(members={"C:evil.py": b""}), "absolute", id="drive_member"),
        # A '..' component climbs out of site-packages.
        pytest.param(Upload(members={"foo/../../evil.py": b""}), "..", id="dotdot_member"),
        # A backslash is a separator to Windows unpackers, not to ours.
        pytest.param(
            Upload(members={"foo\\..\\..\\evil.py": b""}), "backslash", id="backslash_member"
        ),
        # A symlink member would point an install at any file on the machine.
        pytest.param(Upload(symlink="foo/passwd"), "symlink", id="symlink_member"),
        # Two entries with one name: which wins depends on the unpacker.
        pytest.param(
            Upload(appended=(("foo-1.0.dist-info/METADATA", metadata_for("foo", "9")),)),
            "duplicated",
            id="duplicate_member",
        ),
        # One member above the limit, stored as it is.
        pytest.param(
            Upload(
                members={"foo/data.bin": b"x" * 2048},
                compression=zipfile.ZIP_STORED,
                limits=IntakeLimits(max_member_bytes=1024),
            ),
            "'foo/data.bin' is too big",
            id="member_too_big",
        ),
        # Many members, each within the limit, together above the total.
        pytest.param(
            Upload(
                members={f"foo/{n}.bin": b"x" * 600 for n in range(3)},
                limits=IntakeLimits(max_total_bytes=1024),
            ),
            "in all",
            id="members_too_big_in_all",
        ),
        # More members than the limit.
        pytest.param(
            Upload(members={"foo/a.py": b"", "foo/b.py": b""}, limits=IntakeLimits(max_members=3)),
            "too many",
            id="too_many_members",
        ),
        # A member whose bytes are not those RECORD lists: changed after the build.
        pytest.param(
            Upload(members={"foo/a.py": b"evil()"}, record={"foo/a.py": b"good()"}),
            "RECORD",
            id="record_hash_mismatch",
        ),
        # A member RECORD does not list at all.
        pytest.param(Upload(record=False), "RECORD", id="record_missing"),
        # Bidirectional overrides and control characters in a file name make it read as another.
        pytest.param(
            Upload(filename="foo-1.0-py3-none-any\u202egnp.whl"), "U+202E", id="filename_bidi"
        ),
        pytest.param(
            Upload(filename="foo-1.0-py3-none-any\x1b[2K.whl"), "U+001B", id="filename_escape"
        ),
        # A zip bomb: 16 MiB of zeros in a file of about 16 KiB.
        pytest.param(
            Upload(
                members={"foo/zeros.bin": bytes(16 << 20)},
                limits=IntakeLimits(max_member_bytes=1 << 20),
            ),
            "'foo/zeros.bin' is too big",
            id="zip_bomb",
        ),
    ],
)
def test_a_bad_upload_is_refused_with_the_reason(tmp_path: Path, upload: Upload, word: str) -> None:
    path = upload.write(tmp_path)
    with pytest.raises(IntakeError) as refused:
        inspect(
            path,
            upload.filename,
            version=upload.version,
            accepted_tags=upload.accepted_tags,
            expected_sha256=upload.expected_sha256,
            expected_size=upload.expected_size,
            limits=upload.limits,
        )
    assert word in refused.value.reason
    assert refused.value.filename == upload.filename
    assert str(refused.value) == f"wheel {upload.filename!r} refused: {refused.value.reason}"


def test_a_zip_bomb_is_refused_without_inflating_it(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, PURE, {"foo/zeros.bin": bytes(16 << 20)})
    assert path.stat().st_size < 1 << 20  # the bomb is small on disk
    with pytest.raises(IntakeError, match=r"foo/zeros\.bin"):
        inspect(path, limits=IntakeLimits(max_member_bytes=1 << 20, max_wheel_bytes=1 << 20))


@pytest.fixture(scope="module")
def valid_wheel(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = make_wheel(
        tmp_path_factory.mktemp("valid"),
        PURE,
        {"foo/__init__.py": b"x = 1\n" * 50},
        metadata=metadata_for("foo", "1.0", requires_python=">=3.9", requires_dist=("bar",)),
    )
    return path.read_bytes()


@settings(max_examples=300, deadline=None)
@given(
    changes=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=6),
    cut=st.integers(min_value=0),
)
def test_a_corrupted_upload_is_accepted_or_refused_never_crashes(
    tmp_path_factory: pytest.TempPathFactory,
    valid_wheel: bytes,
    changes: list[tuple[int, int]],
    cut: int,
) -> None:
    data = bytearray(valid_wheel)
    for offset, value in changes:
        data[offset % len(data)] = value
    del data[len(data) - cut % len(data) :]
    path = tmp_path_factory.mktemp("fuzz") / "upload.whl"
    path.write_bytes(bytes(data))
    with contextlib.suppress(IntakeError):
        inspect(path)


@settings(max_examples=200, deadline=None)
@given(
    metadata=st.one_of(
        st.binary(max_size=512),
        st.lists(
            st.sampled_from(
                [
                    b"Name: foo",
                    b"Version: 1.0",
                    b"Name: bar",
                    b"Version: 1.x",
                    b"Name:",
                    b"Requires-Python: >=3",
                    b"Requires-Dist: bar; extra ==",
                    b"\xff\xfe: x",
                    b" continued",
                    b"",
                    b"Requires-Dist: baz (>=1)",
                ]
            ),
            max_size=8,
        ).map(b"\n".join),
    )
)
def test_any_metadata_is_accepted_or_refused_never_crashes(
    tmp_path_factory: pytest.TempPathFactory, metadata: bytes
) -> None:
    path = make_wheel(tmp_path_factory.mktemp("metadata"), PURE, metadata=metadata)
    with contextlib.suppress(IntakeError):
        accepted = inspect(path)
        assert accepted.metadata == metadata


@pytest.fixture
def inspected(tmp_path: Path) -> tuple[Path, AcceptedWheel]:
    path = make_wheel(tmp_path, PURE, {"foo/__init__.py": b"x = 1\n"})
    return path, inspect(path)


def test_store_publishes_the_file_atomically(
    tmp_path: Path, inspected: tuple[Path, AcceptedWheel]
) -> None:
    source, wheel = inspected
    directory = tmp_path / "published" / "foo"  # created on demand
    stored = store_wheel(source, wheel, directory)
    assert stored == directory / PURE
    assert stored.read_bytes() == source.read_bytes()
    assert [child.name for child in directory.iterdir()] == [PURE]  # no partial file left


def test_store_is_idempotent_for_the_same_bytes(
    tmp_path: Path, inspected: tuple[Path, AcceptedWheel]
) -> None:
    source, wheel = inspected
    directory = tmp_path / "published"
    first = store_wheel(source, wheel, directory)
    assert store_wheel(source, wheel, directory) == first
    assert [child.name for child in directory.iterdir()] == [PURE]


def test_store_refuses_different_bytes_under_a_published_name(
    tmp_path: Path, inspected: tuple[Path, AcceptedWheel]
) -> None:
    source, wheel = inspected
    directory = tmp_path / "published"
    published = store_wheel(source, wheel, directory).read_bytes()

    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = make_wheel(other_dir, PURE, {"foo/__init__.py": b"x = 2\n"})
    with pytest.raises(IntakeError) as refused:
        store_wheel(other, inspect(other), directory)

    assert "different file" in refused.value.reason
    assert (directory / PURE).read_bytes() == published
    assert [child.name for child in directory.iterdir()] == [PURE]


def test_store_leaves_no_partial_file_when_the_source_is_missing(
    tmp_path: Path, inspected: tuple[Path, AcceptedWheel]
) -> None:
    source, wheel = inspected
    source.unlink()
    directory = tmp_path / "published"
    with pytest.raises(FileNotFoundError):
        store_wheel(source, wheel, directory)
    assert list(directory.iterdir()) == []


def test_store_refuses_a_source_changed_since_inspection_and_cleans_up(
    tmp_path: Path, inspected: tuple[Path, AcceptedWheel]
) -> None:
    source, wheel = inspected
    source.write_bytes(source.read_bytes() + b"appended after inspection")
    directory = tmp_path / "published"
    with pytest.raises(IntakeError) as refused:
        store_wheel(source, wheel, directory)
    assert "changed" in refused.value.reason
    assert list(directory.iterdir()) == []  # the partial copy was removed


def test_store_refuses_a_file_name_with_a_path(
    tmp_path: Path, inspected: tuple[Path, AcceptedWheel]
) -> None:
    source, wheel = inspected
    forged = AcceptedWheel(**{**wheel.__dict__, "filename": "../" + PURE})
    with pytest.raises(IntakeError, match="separator"):
        store_wheel(source, forged, tmp_path / "published")
    assert not (tmp_path / PURE).exists()


def test_store_refuses_different_bytes_published_by_a_racing_upload(
    tmp_path: Path, inspected: tuple[Path, AcceptedWheel], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, wheel = inspected
    directory = tmp_path / "published"
    real_link = os.link

    def link_after_a_rival(src: Path, dst: Path) -> None:
        dst.write_bytes(b"the rival's bytes")  # lands between our check and our link
        real_link(src, dst)

    monkeypatch.setattr("wheelfarm.farm.intake.os.link", link_after_a_rival)
    with pytest.raises(IntakeError, match="different file"):
        store_wheel(source, wheel, directory)
    assert (directory / PURE).read_bytes() == b"the rival's bytes"
    assert [child.name for child in directory.iterdir()] == [PURE]
