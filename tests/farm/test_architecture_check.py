"""Intake (and ``wheelfarm import``) refuse a wheel whose ELF objects are not for its machine.

The end-to-end case goes through the real builder API: a C-extension wheel really built here
(gcc, x86_64) is renamed to claim ``linux_aarch64`` and uploaded for an aarch64 job.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest
from sqlalchemy import Engine, select

from tests.farm.conftest import Farm
from tests.farm.test_intake import make_wheel
from tests.fixtures.sdists import make_sdist
from tests.publish.states import NOW, State
from wheelfarm.builder.client import MasterRefused
from wheelfarm.builder.libraries import ElfIdentity
from wheelfarm.farm.architecture import check_architecture, describe_identity
from wheelfarm.farm.intake import IntakeError
from wheelfarm.farm.jobs import schedule_project
from wheelfarm.farm.registry import add_builder, add_target
from wheelfarm.farm.wheels import ImportRefused, import_wheel
from wheelfarm.names import canonical
from wheelfarm.protocol import Hello
from wheelfarm.store.schema import build_files
from wheelfarm.targets import Target, local_target


def header(elf_class: int, data: int, machine: int) -> bytes:
    """The first bytes of an ELF object: what the check reads (the rest is padding here)."""
    order: Literal["little", "big"] = "little" if data == 1 else "big"
    ident = b"\x7fELF" + bytes([elf_class, data, 1]) + bytes(9)
    return ident + (3).to_bytes(2, order) + machine.to_bytes(2, order) + bytes(44)


X86_64 = header(2, 1, 62)
I386 = header(1, 1, 3)
AARCH64 = header(2, 1, 183)
ARM = header(1, 1, 40)
PPC64LE = header(2, 1, 21)
PPC64 = header(2, 2, 21)


@pytest.mark.parametrize(
    ("platform", "objects", "refused"),
    [
        ("linux_aarch64", {"foo/_c.so": AARCH64}, None),
        ("linux_aarch64", {"foo/_c.so": X86_64}, "foo/_c.so"),
        ("manylinux_2_17_aarch64", {"foo/a.so": AARCH64, "foo/b.so": ARM}, "foo/b.so"),
        ("linux_armv7l", {"foo/_c.so": ARM, "foo.libs/libz.so.1": ARM}, None),
        ("linux_armv7l", {"foo/_c.so": AARCH64}, "foo/_c.so"),
        ("linux_x86_64", {"foo/_c.so": I386}, "foo/_c.so"),  # the class differs
        ("linux_ppc64le", {"foo/_c.so": PPC64}, "foo/_c.so"),  # the byte order differs
        ("linux_ppc64le", {"foo/_c.so": PPC64LE}, None),
        # not ELF, or too short to be: no object to check
        ("linux_aarch64", {"foo/data.bin": b"\x7fELF", "foo/x.py": b"x = 1\n" * 10}, None),
        # a platform whose machine we do not know: nothing is checked
        ("linux_mips", {"foo/_c.so": X86_64}, None),
    ],
)
def test_every_elf_object_must_be_for_the_targets_machine(
    tmp_path: Path, platform: str, objects: dict[str, bytes], refused: str | None
) -> None:
    wheel = make_wheel(tmp_path, f"foo-1.0-cp311-cp311-{platform}.whl", objects)
    target = f"cp311-cp311-{platform}"
    if refused is None:
        check_architecture(wheel, wheel.name, target, platform)
        return
    with pytest.raises(IntakeError) as error:
        check_architecture(wheel, wheel.name, target, platform)
    assert f"member {refused!r}" in error.value.reason and target in error.value.reason


def test_the_reason_says_what_the_object_is_and_what_the_target_runs(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "foo-1.0-cp311-cp311-linux_aarch64.whl", {"foo/_c.so": X86_64})
    with pytest.raises(IntakeError) as error:
        check_architecture(wheel, "w.whl", "cp311-cp311-linux_aarch64", "linux_aarch64")
    assert str(error.value) == (
        "wheel 'w.whl' refused: member 'foo/_c.so' is a 64-bit little-endian x86-64 object, "
        "but target cp311-cp311-linux_aarch64 runs 64-bit little-endian AArch64 code"
    )
    assert describe_identity(ElfIdentity(1, 2, 999)) == "32-bit big-endian machine 999"


def build_c_wheel(tmp_path: Path) -> Path:
    """A real C-extension wheel of ``demo-c 1.0``, compiled here by gcc through pip."""
    sdist = make_sdist(tmp_path / "sdists", "demo-c", "1.0", kind="c")
    out = tmp_path / "built"
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run(
        [*pip, "-w", str(out), str(sdist)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("*.whl")
    return wheel


def test_an_x86_64_wheel_renamed_to_linux_aarch64_is_refused_by_the_builder_api(
    farm: Farm, tmp_path: Path
) -> None:
    native = local_target()
    if not native.platform.endswith("x86_64"):
        pytest.skip("the renamed wheel must be built on a machine that is not aarch64")
    aarch64 = Target.parse(f"{native.interpreter}-{native.abi}-linux_aarch64")
    built = build_c_wheel(tmp_path)
    renamed = tmp_path / built.name.replace(native.platform, "linux_aarch64")
    assert renamed.name != built.name
    shutil.copy(built, renamed)
    with farm.engine.begin() as connection:
        add_target(connection, aarch64)
    farm.publish(make_sdist(tmp_path / "sdists", "demo-c", "1.0", kind="c"), "demo-c", "1.0")
    with farm.engine.begin() as connection:
        schedule_project(connection, canonical("demo-c"), [native, aarch64], now=farm.clock())

    client = farm.client()
    client.hello(Hello(target=aarch64.name, platforms=["linux_aarch64"], python="3", os="x"))
    job = client.claim().job
    assert job is not None and job.target == aarch64.name
    digest = hashlib.sha256(renamed.read_bytes()).hexdigest()
    with pytest.raises(MasterRefused) as refused:
        client.upload(job.build_id, renamed, digest)
    assert refused.value.status == 422
    detail = refused.value.detail
    assert renamed.name in detail and "x86-64 object" in detail and "AArch64" in detail
    assert "demo_c/_speedups" in detail  # the object is named
    assert not (farm.wheels / "demo-c" / renamed.name).exists()

    # The same wheel under its true name, for the native target, goes in (another builder:
    # the first still holds its build).
    with farm.engine.begin() as connection:
        native_client = farm.client(add_builder(connection, "native", now=farm.clock()))
    native_client.hello(
        Hello(target=native.name, platforms=list(native.platforms), python="3", os="x")
    )
    native_job = native_client.claim().job
    assert native_job is not None and native_job.target == native.name
    native_client.upload(native_job.build_id, built, hashlib.sha256(built.read_bytes()).hexdigest())
    with farm.engine.connect() as connection:
        stored = connection.execute(select(build_files.c.filename)).scalars().all()
    assert stored == [built.name]


@pytest.mark.parametrize(
    ("objects", "refused"),
    [
        ({"foo/_c.so": X86_64}, True),  # x86_64 code under a linux_aarch64 name
        ({"foo/_c.so": AARCH64, "foo/b.so": ARM}, True),  # one 32-bit ARM object is enough
        ({"foo/_c.so": AARCH64}, False),
    ],
)
def test_import_checks_the_elf_architecture_like_intake(
    engine: Engine, tmp_path: Path, objects: dict[str, bytes], refused: bool
) -> None:
    state = State(engine, tmp_path)
    state.release("foo", "1.0")
    state.target(Target.parse("cp311-cp311-linux_aarch64"))
    spooled = make_wheel(tmp_path, "foo-1.0-cp311-cp311-linux_aarch64.whl", objects)
    wheel = spooled.rename(tmp_path / "foo-1.0-cp311-cp311-linux_aarch64.whl")
    with engine.begin() as connection:
        if not refused:
            import_wheel(connection, wheel, state.wheel_dir, now=NOW)
        else:
            with pytest.raises(ImportRefused) as error:
                import_wheel(connection, wheel, state.wheel_dir, now=NOW)
            assert "object, but target cp311-cp311-linux_aarch64 runs" in str(error.value)
    with engine.connect() as connection:
        stored = connection.execute(select(build_files.c.filename)).scalars().all()
    assert stored == ([] if refused else [wheel.name])
    assert (state.wheel_dir / "foo" / wheel.name).exists() is not refused
