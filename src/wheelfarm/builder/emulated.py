"""What a builder building in a root file system needs, found once when it starts.

:func:`prepare_root` checks the root (complete, this process is root, its architecture
runnable here: emulation enabled if it must be), removes mounts an earlier, killed builder may
have left under it, and asks the root's own interpreter what it builds for. The result gives
the loop (:func:`wheelfarm.builder.loop.run_builder`) its isolation, interpreter, target and
the libraries the wheel analysis resolves against.
"""

from __future__ import annotations

import json
import logging
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from wheelfarm.builder.chroot import ChrootIsolation, root_probe, root_target, unmount_stale
from wheelfarm.builder.emulation import RootfsError, enable_emulation, host_arch
from wheelfarm.builder.libraries import SystemLibraries, root_libraries
from wheelfarm.builder.rootfs import MARKER, is_ready
from wheelfarm.targets import Target

__all__ = ["RootBuilder", "prepare_root"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RootBuilder:
    """A root ready to build in, and what its interpreter said of itself."""

    root: Path
    arch: str  # Debian's name
    isolation: ChrootIsolation
    target: Target
    python_version: str  # the root's interpreter, e.g. 3.11.2
    pip_version: str  # its pip's, for the log header
    os: str  # for the master's builder list: distro, arch, and whether emulated
    libraries: SystemLibraries


def prepare_root(root: Path) -> RootBuilder:
    """Check ``root`` and make it ready to build in; :class:`RootfsError` says why not."""
    if os.geteuid() != 0:  # first, so that nothing is touched (made, unmounted) without it
        raise RootfsError(
            f"building in a root file system needs root (chroot, mounts, namespaces); "
            f"this is user {os.geteuid()}: run the builder as root"
        )
    root = root.resolve()
    if not is_ready(root):
        raise RootfsError(
            f"{root} is not a complete root file system (make one with: wheelfarm rootfs create)"
        )
    marker = json.loads((root / MARKER).read_text())
    arch = str(marker.get("arch", ""))
    enable_emulation(arch)
    left = unmount_stale(root)
    if left:
        log.warning("unmounted %d mounts an earlier builder left under %s", len(left), root)
    probe = root_probe(root)
    emulated = "" if arch == host_arch() else f", emulated on {platform.machine()}"
    return RootBuilder(
        root=root,
        arch=arch,
        isolation=ChrootIsolation(
            root, emulated_32bit=bool(emulated) and probe["pointer_bytes"] == 4
        ),
        target=root_target(root, probe),
        python_version=str(probe["version"]),
        pip_version=str(probe.get("pip") or "unknown"),
        os=f"Debian {marker.get('distro', '?')} {arch}{emulated}",
        libraries=root_libraries(root, str(probe.get("multiarch") or "") or None),
    )
