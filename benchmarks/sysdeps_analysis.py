"""Benchmark: system dependency analysis of a wheel with 50 shared objects (target < 1 s).

Five distinct objects are compiled with gcc (compile time is not measured): one links libyaml,
one zlib, one libm, one only libc, and one a library bundled under ``.libs`` through
``$ORIGIN``. They are copied under 50 names into one wheel, with the bundled library beside
them. The analysis runs in a fresh process, so the measured time includes reading the ld.so
cache and dpkg's file lists (cold); then once more in that process (warm).

    python benchmarks/sysdeps_analysis.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

OBJECTS = {
    "yaml": (
        "#include <yaml.h>\nconst char *f(void){return yaml_get_version_string();}\n",
        "-lyaml",
    ),
    "zlib": ("#include <zlib.h>\nconst char *f(void){return zlibVersion();}\n", "-lz"),
    "libm": ("#include <math.h>\ndouble f(double x){return cos(x);}\n", "-lm"),
    "libc": ("#include <string.h>\nconst char *f(void){return strerror(0);}\n", ""),
    "bundled": ("const char *g(void);\nconst char *f(void){return g();}\n", "-lbundled"),
}

MEASURE = """
import json, sys, time
from pathlib import Path
start = time.perf_counter()
from wheelfarm.builder.sysdeps import analyse_wheel
imported = time.perf_counter()
cold = analyse_wheel(Path(sys.argv[1]))
analysed = time.perf_counter()
warm = analyse_wheel(Path(sys.argv[1]))
again = time.perf_counter()
assert cold == warm and not cold.problems, cold
print(json.dumps({"import": imported - start, "cold": analysed - imported,
                  "warm": again - analysed, "apt": cold.apt, "bundled": cold.bundled}))
"""


def compile_objects(directory: Path) -> dict[str, bytes]:
    """The distinct objects, and the bundled library they may need."""
    libs = directory / ".libs"
    libs.mkdir()
    (libs / "g.c").write_text('const char *g(void){return "g";}\n')
    subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-Wl,-soname,libbundled.so.1",
            "-o",
            str(libs / "libbundled.so.1"),
            str(libs / "g.c"),
        ],
        check=True,
    )
    (libs / "libbundled.so").symlink_to("libbundled.so.1")
    built = {".libs/libbundled.so.1": (libs / "libbundled.so.1").read_bytes()}
    for name, (source, flag) in OBJECTS.items():
        (directory / f"{name}.c").write_text(source)
        command = [
            "gcc",
            "-shared",
            "-fPIC",
            "-o",
            str(directory / f"{name}.so"),
            str(directory / f"{name}.c"),
            f"-L{libs}",
            "-Wl,-rpath,$ORIGIN/.libs",
        ]
        subprocess.run([*command, *flag.split()], check=True)
        built[name] = (directory / f"{name}.so").read_bytes()
    return built


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        built = compile_objects(directory)
        wheel = directory / "bench-1.0-cp311-cp311-linux_x86_64.whl"
        kinds = list(OBJECTS)
        with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
            for number in range(49):  # + the bundled library: 50 objects
                data = built[kinds[number % len(kinds)]]
                archive.writestr(f"bench/_ext{number}.cpython-311-x86_64-linux-gnu.so", data)
            archive.writestr("bench/.libs/libbundled.so.1", built[".libs/libbundled.so.1"])
            archive.writestr("bench/__init__.py", "")
        output = subprocess.run(
            [sys.executable, "-c", MEASURE, str(wheel)],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout
    figures = json.loads(output)
    print(
        f"dependency analysis: 50 shared objects in {figures['cold']:.3f} s (target < 1 s); "
        f"warm process {figures['warm']:.3f} s, import {figures['import']:.3f} s "
        f"[apt: {' '.join(figures['apt'])}; bundled: {' '.join(figures['bundled'])}]"
    )


if __name__ == "__main__":
    main()
