"""Builds inside a root file system of another platform: chroot, in a private mount namespace.

A root (:mod:`wheelfarm.builder.rootfs`) is a Debian system of the target's architecture with a
build venv at :data:`VENV`. Its programs run under qemu user emulation (the kernel's binfmt
hands them to qemu), so the interpreter that builds, and the one whose target the builder
reports (:func:`root_target`), are the root's own, never the host's.

:class:`ChrootIsolation` wraps a build's command so that it runs:

- under ``setpriv --pdeathsig SIGKILL`` (killed with the builder) and in its own PID and mount
  namespaces (``unshare --pid --fork --kill-child``): when the build's first process dies, or
  the sandbox kills the process group, everything in the namespace dies with it;
- with the root bound read-only onto itself, a fresh ``/proc`` (only the build's processes),
  ``/sys`` read-only, a tiny ``/dev`` (null, zero, full, random, urandom, tty, shm), and the
  build directory bound read-write at :data:`BUILD_AREA`, and a small private ``/tmp`` (builds
  are told to use ``/build/tmp``). These mounts exist only in the
  build's namespace: the host never sees them, and they vanish with the build however it
  ends, even when the builder is killed with SIGKILL;
- chrooted, as the unprivileged user 65534 (who owns the build directory for the build), so
  it cannot leave the chroot, write the root or read the builder's files, its token included.

:func:`unmount_stale` removes mounts under a root that an older or interrupted process left in
the host's namespace (found in ``/proc/self/mountinfo``); the builder calls it when it starts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from wheelfarm.builder.emulation import RootfsError
from wheelfarm.targets import Target

__all__ = [
    "BUILD_AREA",
    "EMULATOR_ALLOWANCE",
    "NOBODY",
    "VENV",
    "ChrootIsolation",
    "host_tool",
    "mounts_under",
    "probe_interpreter",
    "root_command",
    "root_environment",
    "root_probe",
    "root_target",
    "unmount_stale",
]

#: Where the build directory appears inside the root.
BUILD_AREA = "/build"
#: The build venv inside the root (its pip, setuptools and wheel are current).
VENV = "/opt/wheelfarm/venv"
#: The extra address space a 32-bit guest's emulator needs: its 4 GiB reservation and its own
#: (see :meth:`ChrootIsolation.address_space` for the measurement).
EMULATOR_ALLOWANCE = 5 << 30
#: The user and group a build runs as inside the root.
NOBODY = 65534
#: The system part of PATH inside the root, after the venv's bin.
_ROOT_PATH = "/usr/local/bin:/usr/bin:/bin"
_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PACKAGES = {
    "setpriv": "util-linux",
    "unshare": "util-linux",
    "chroot": "coreutils",
    "umount": "mount",
}

# argv: ROOT BUILD_DIR (or "" for none) READ_ONLY(1/0) USER(uid or "") COMMAND...
# Runs with the host's /bin/sh inside fresh mount and PID namespaces; the mounts die with them.
_MOUNT_SCRIPT = """\
set -eu
PATH=/usr/sbin:/usr/bin:/sbin:/bin
R=$1; D=$2; RO=$3; U=$4; shift 4
mount --bind "$R" "$R"
if [ "$RO" = 1 ]; then mount -o remount,bind,ro "$R"; fi
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
mount -t tmpfs -o mode=755,size=1m,nosuid tmpfs "$R/dev"
for n in null zero full random urandom tty; do
  : > "$R/dev/$n"; mount --bind "/dev/$n" "$R/dev/$n"
done
mkdir "$R/dev/shm"; mount -t tmpfs -o mode=1777,size=64m,nosuid,nodev tmpfs "$R/dev/shm"
ln -s /proc/self/fd "$R/dev/fd"
if [ "$RO" = 1 ]; then mount -t tmpfs -o mode=1777,size=256m,nosuid,nodev tmpfs "$R/tmp"; fi
if [ -n "$D" ]; then
  chown -R "$U:$U" "$D"
  mount --bind "$D" "$R/build"
fi
if [ -n "$U" ]; then exec chroot --userspec="$U:$U" --groups="$U" "$R" "$@"; fi
exec chroot "$R" "$@"
"""


def host_tool(name: str) -> str:
    """The absolute path of a host program, looked for in the system directories too."""
    found = shutil.which(name) or shutil.which(name, path=_HOST_PATH)
    if found is None:
        raise RootfsError(f"{name} is missing: apt-get install {_PACKAGES.get(name, name)}")
    return os.path.abspath(found)


def root_command(
    root: Path,
    command: Sequence[str],
    environment: Mapping[str, str],
    *,
    build_dir: Path | None = None,
    read_only: bool = True,
    user: int | None = NOBODY,
) -> list[str]:
    """The host argv running ``command`` (paths as seen inside) chrooted in ``root``.

    See the module docstring for what it sets up. ``environment`` is set inside (by the root's
    ``env``) over whatever the process was given.
    """
    settings = [f"{key}={value}" for key, value in environment.items()]
    return [
        host_tool("setpriv"), "--pdeathsig", "SIGKILL",
        host_tool("unshare"), "--mount", "--pid", "--fork", "--kill-child=SIGKILL",
        "--propagation", "private",
        "/bin/sh", "-c", _MOUNT_SCRIPT, "wheelfarm-chroot",
        str(root), "" if build_dir is None else str(build_dir),
        "1" if read_only else "0", "" if user is None else str(user),
        "/usr/bin/env", *settings, *command,
    ]  # fmt: skip


def root_environment(root: Path, home: str) -> dict[str, str]:
    """The variables a command inside the root needs, with paths as seen inside."""
    environment = {
        "PATH": f"{VENV}/bin:{_ROOT_PATH}",
        "HOME": home,
        "LANG": "C.UTF-8",
    }
    if (root / _CA_BUNDLE.lstrip("/")).is_file():
        environment["PIP_CERT"] = _CA_BUNDLE
    return environment


class ChrootIsolation:
    """A build inside a root of another (or the same) platform; see the module docstring.

    ``wrap`` takes the sandbox's command whose interpreter is the root's venv python given by
    its host path (``ROOT/opt/wheelfarm/venv/bin/python``) and whose paths lie in the build
    directory, and rewrites both to what they are inside the root.
    """

    name = "chroot"
    confined = True
    notice = b""

    def __init__(self, root: Path, *, emulated_32bit: bool = False) -> None:
        self.root = root.resolve()
        self.emulated_32bit = emulated_32bit

    def address_space(self, memory_bytes: int) -> int:
        """The RLIMIT_AS a build limited to ``memory_bytes`` gets (the sandbox asks).

        Why a 32-bit guest gets :data:`EMULATOR_ALLOWANCE` more: on a 64-bit host, qemu-arm
        reserves the guest's whole 4 GiB address space with one mapping when it starts, and
        that mapping counts against RLIMIT_AS before the guest allocates a byte. Measured with
        Debian 12's qemu-arm 7.2 running ``/bin/true`` from the armhf root under ``prlimit
        --as``: 4,200 MiB or less and qemu never starts (it hangs, it does not fail: a build
        would sit until its timeout), 4,400 MiB and up it runs; ``QEMU_RESERVED_VA`` does not
        lower it. qemu-aarch64 reserves nothing of the kind (1 GiB is plenty for ``true``).
        So for a 32-bit guest the address-space limit cannot bound the guest's memory: its
        allocations land inside the reservation that is already counted. What bounds each of
        its processes is its architecture (4 GiB); the 5 GiB added cover the reservation and
        qemu's own memory (its translation buffers grow with the code run).
        """
        return memory_bytes + EMULATOR_ALLOWANCE if self.emulated_32bit else memory_bytes

    @property
    def python(self) -> str:
        """The host path of the root's build interpreter (what ``BuildRequest.python`` is)."""
        return str(self.root / VENV.lstrip("/") / "bin" / "python")

    def wrap(self, command: Sequence[str], directory: Path) -> list[str]:
        inside = [_inside(argument, self.root, directory) for argument in command]
        environment = root_environment(self.root, f"{BUILD_AREA}/home")
        environment["TMPDIR"] = f"{BUILD_AREA}/tmp"
        # the paths as seen inside; the sandbox's other (scrubbed) variables pass through
        return root_command(self.root, inside, environment, build_dir=directory.resolve())


def _inside(argument: str, root: Path, directory: Path) -> str:
    """A host path in the build directory or the root as the build sees it; else unchanged."""
    for prefix, replacement in ((str(directory.resolve()), BUILD_AREA), (str(root), "")):
        if argument == prefix or argument.startswith(prefix + "/"):
            return replacement + argument[len(prefix) :] or "/"
    return argument


_PROBE = """\
import json, sys, sysconfig
import pip
from pip._vendor.packaging import tags
first = next(iter(tags.sys_tags()))
print(json.dumps({
    "interpreter": f"{tags.interpreter_name()}{tags.interpreter_version()}",
    "abi": first.abi,
    "platform": sysconfig.get_platform().replace("-", "_").replace(".", "_"),
    "platforms": list(tags.platform_tags()),
    "soabi": sysconfig.get_config_var("SOABI"),
    "multiarch": sysconfig.get_config_var("MULTIARCH"),
    "pointer_bytes": 8 if sys.maxsize > 2**32 else 4,
    "version": sys.version.split()[0],
    "pip": pip.__version__,
}))
"""


def root_probe(root: Path) -> dict[str, object]:
    """What the root's build interpreter says of itself (run inside it, under emulation).

    Raises :class:`RootfsError` in one line when it cannot run: no such venv, or the kernel
    cannot execute the root's programs (qemu not registered: ``Exec format error``).
    """
    python = root / VENV.lstrip("/") / "bin" / "python"
    if not python.exists():
        raise RootfsError(f"{root}: no build interpreter at {VENV}/bin/python; not a ready root")
    command = [host_tool("chroot"), str(root), f"{VENV}/bin/python"]
    return probe_interpreter(command, root_environment(root, "/root"), str(root))


def probe_interpreter(
    python: Sequence[str], env: Mapping[str, str], where: str
) -> dict[str, object]:
    """What an interpreter (``python``: the command that runs it, a chroot's say) says of itself
    and its pip: tags, platform, version, pip's version. The root's interpreter runs only inside
    its root, so the builder's log header learns pip's version here, not by running it.
    """
    try:
        done = subprocess.run(
            [*python, "-I", "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(env),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RootfsError(f"{where}: cannot run its interpreter: {error}") from None
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        reason = said[-1] if said else f"exit status {done.returncode}"
        if "Exec format error" in done.stderr or done.returncode in (126, 127):
            reason += (
                " (the kernel cannot run its programs: is its qemu registered with"
                " binfmt_misc? as root: update-binfmts --enable qemu-ARCH)"
            )
        raise RootfsError(f"{where}: cannot run its interpreter: {reason}")
    found: dict[str, object] = json.loads(done.stdout)
    return found


def root_target(root: Path, probe: Mapping[str, object] | None = None) -> Target:
    """The target the root's interpreter builds for: its tags, platform and ABI, never uname."""
    found = probe if probe is not None else root_probe(root)
    platforms = tuple(str(p) for p in found["platforms"])  # type: ignore[attr-defined]
    name = f"{found['interpreter']}-{found['abi']}-{found['platform']}"
    return Target.parse(name, platforms)


def mounts_under(root: Path) -> list[str]:
    """Mount points in this process's namespace at or under ``root``, deepest first."""
    prefix = str(root.resolve())
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) < 5:
            continue
        # mountinfo escapes space, tab, newline and backslash as octal
        point = fields[4].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return sorted(set(found), key=lambda p: (-p.count("/"), p))


def unmount_stale(root: Path) -> list[str]:
    """Unmount whatever is mounted under ``root`` (lazily, deepest first); returns the points.

    Raises :class:`RootfsError` if a mount is still there after, since removing or reusing the
    root then could reach into the host's ``/dev`` or ``/proc``.
    """
    points = mounts_under(root)
    for point in points:
        subprocess.run([host_tool("umount"), "--lazy", point], capture_output=True, check=False)
    left = mounts_under(root)
    if left:
        raise RootfsError(f"{root}: cannot unmount {left[0]} (and {len(left) - 1} more)")
    return points
