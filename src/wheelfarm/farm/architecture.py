"""Intake's architecture check: every ELF object in a wheel must run on the job's target.

A wheel's tag is only a name. A builder that is misconfigured (an emulated builder that fell
back to the host's compiler, a cross-build that went wrong) or hostile can upload x86_64 code
under a ``linux_aarch64`` tag, and every user of that target would then get a wheel that fails
at import. So every member that is an ELF object is read by content (its header's class, byte
order and machine, with the builder's own reader, :func:`wheelfarm.builder.libraries.elf_identity`)
and must be what the target's platform runs.
"""

from __future__ import annotations

import lzma
import zipfile
import zlib
from pathlib import Path

from wheelfarm.builder.libraries import ELF_HEADER_BYTES, ElfIdentity, elf_identity
from wheelfarm.farm.intake import IntakeError
from wheelfarm.targets import machine_of

__all__ = ["MACHINES", "check_architecture", "describe_identity", "expected_identity"]

# A wheel platform's machine -> the ELF identity of the objects that run on it.
MACHINES: dict[str, ElfIdentity] = {
    "x86_64": ElfIdentity(2, 1, 62),
    "i686": ElfIdentity(1, 1, 3),
    "i386": ElfIdentity(1, 1, 3),
    "aarch64": ElfIdentity(2, 1, 183),
    "armv7l": ElfIdentity(1, 1, 40),
    "armv6l": ElfIdentity(1, 1, 40),
    "ppc64le": ElfIdentity(2, 1, 21),
    "ppc64": ElfIdentity(2, 2, 21),
    "s390x": ElfIdentity(2, 2, 22),
    "riscv64": ElfIdentity(2, 1, 243),
    "loongarch64": ElfIdentity(2, 1, 258),
}
_MACHINE_NAMES = {
    3: "i386",
    8: "MIPS",
    20: "PowerPC",
    21: "PowerPC64",
    22: "S/390",
    40: "ARM",
    62: "x86-64",
    183: "AArch64",
    243: "RISC-V",
    258: "LoongArch",
}


# What reading a corrupt member raises (as in intake): the archive's own errors, a truncated or
# corrupt stream, an encrypted member, a compression method zipfile lacks.
_UNREADABLE = (
    zipfile.BadZipFile,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    OSError,
    RuntimeError,
    NotImplementedError,
)


def expected_identity(platform: str) -> ElfIdentity | None:
    """The ELF identity a platform's objects have; None for a platform we cannot tell."""
    machine = machine_of(platform)
    return MACHINES.get(machine) if machine is not None else None


def describe_identity(identity: ElfIdentity) -> str:
    """An ELF identity for people: ``64-bit little-endian x86-64``."""
    bits = "32-bit" if identity.elf_class == 1 else "64-bit"
    order = "little-endian" if identity.data == 1 else "big-endian"
    machine = _MACHINE_NAMES.get(identity.machine, f"machine {identity.machine}")
    return f"{bits} {order} {machine}"


def check_architecture(path: Path, filename: str, target: str, platform: str) -> None:
    """Refuse the wheel at ``path`` if an ELF object in it is not for ``platform``.

    ``target`` names the job's target in the reason. Nothing is checked for a platform whose
    machine we do not know. Raises :class:`~wheelfarm.farm.intake.IntakeError` naming the
    first object that does not fit (the API answers 422).
    """
    wanted = expected_identity(platform)
    if wanted is None:
        return
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir() or info.file_size < ELF_HEADER_BYTES:
                    continue
                with archive.open(info) as member:
                    identity = elf_identity(member.read(ELF_HEADER_BYTES))
                if identity is not None and identity != wanted:
                    raise IntakeError(
                        filename,
                        f"member {info.filename!r} is a {describe_identity(identity)} object, "
                        f"but target {target} runs {describe_identity(wanted)} code",
                    )
    except _UNREADABLE as error:
        # Intake read the archive already; a member that does not inflate is refused here.
        raise IntakeError(filename, f"a member is not readable: {error}") from error
