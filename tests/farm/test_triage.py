"""Failure triage: real failed builds' logs give their category and most telling line.

The logs in ``triage_logs/`` are whole logs of real failing builds (real pip, setuptools, gcc
and bubblewrap, with the sandbox's limits), framed and with host paths replaced as a builder
does; ``python -m tests.fixtures.failing_builds DIR`` makes them again, and
``test_triage_builds.py`` runs the same builds through a real farm. Every row of the rules
table also has a line of its own below, from a real tool's output, so that no row is dead.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wheelfarm.farm.failures import DiedBuild, died_log, triaged_log
from wheelfarm.farm.triage import (
    CATEGORIES,
    LINE_CHARS,
    MASTER_MARKER,
    REASON_CHARS,
    RULES,
    builder_part,
    triage,
)

LOGS = Path(__file__).parent / "triage_logs"

# (log file, category, the reason the master records)
REAL_LOGS = [
    # markupsafe 1.1.1's setup.py with today's setuptools: pip's summary says nothing
    (
        "oldsafe",
        "sdist-broken",
        "ImportError: cannot import name 'Feature' from 'setuptools' "
        "(<env>/lib/python3.11/site-packages/setuptools/__init__.py)",
    ),
    (
        "csyntax",
        "compiler-error",
        "broken_ext.c:2:35: error: expected \u2018;\u2019 before \u2018}\u2019 token",
    ),
    (
        "noheader",
        "missing-dependency",
        "broken_ext.c:2:10: fatal error: yaml_not_installed.h: No such file or directory",
    ),
    # build isolation, and the index has no setuptools
    ("nobackend", "missing-dependency", "ERROR: No matching distribution found for setuptools>=61"),
    (
        "oldpython",
        "python-incompatible",
        "ERROR: Package 'oldpython' requires a different Python: 3.11.7 not in '<3.8'",
    ),
    (
        "py2only",
        "python-incompatible",
        "SyntaxError: Missing parentheses in call to 'print'. Did you mean print(...)?",
    ),
    ("sleepy", "timeout", "timed out after 3 s"),  # the sandbox's time limit
    ("greedy", "out-of-memory", "MemoryError"),  # setup.py past the address-space limit
    # gcc past the address-space limit, expanding a macro that doubles 26 times
    ("macrobomb", "out-of-memory", "virtual memory exhausted: Cannot allocate memory"),
    ("bulky", "no-space", "OSError: [Errno 27] File too large"),  # the file-size limit
    # SIGKILL, as the kernel's out-of-memory killer sends it: to the build backend, to pip
    ("oomkilled", "out-of-memory", "\u2502 exit code: -9"),
    ("pipkilled", "out-of-memory", "pip was killed by SIGKILL"),
    (
        "escapee",
        "sandbox-refused",
        "OSError: [Errno 30] Read-only file system: '/usr/local/share/escapee'",
    ),
    (
        "unreleased",
        "no-sdist-yet",
        "ERROR: Could not find a version that satisfies the requirement unreleased==2.0 "
        "(from versions: 1.0)",
    ),
]


@pytest.mark.parametrize(("name", "category", "reason"), REAL_LOGS, ids=[c[0] for c in REAL_LOGS])
def test_a_real_failed_build_gets_its_category_and_telling_line(
    name: str, category: str, reason: str
) -> None:
    found = triage((LOGS / f"{name}.log").read_text())
    assert (found.category, found.reason) == (category, reason)


def test_the_real_logs_name_no_host_path() -> None:
    for log in LOGS.glob("*.log"):
        text = log.read_text()
        assert not re.search(r"/(?:root|home|work|tmp)/", text), log.name


# One line per row of RULES, in the table's order: (line, where it is, category).
# "output": a line of pip's output; "footer": a line of the builder's footer.
EXAMPLES = [
    ("outcome: died", "footer", "build-died"),
    ("reason: timed out after 10800 s", "footer", "timeout"),
    ("outcome: timeout", "footer", "timeout"),
    ("virtual memory exhausted: Cannot allocate memory", "output", "out-of-memory"),
    ("cc1: out of memory allocating 32768 bytes after a total of 8683520 bytes", "output", "out-of-memory"),  # noqa: E501
    ("g++: fatal error: Killed signal terminated program cc1plus", "output", "out-of-memory"),
    ("terminate called after throwing an instance of 'std::bad_alloc'", "output", "out-of-memory"),
    ("      MemoryError", "output", "out-of-memory"),
    ("OSError: [Errno 12] Cannot allocate memory", "output", "out-of-memory"),
    ("c++: internal compiler error: Killed (program cc1plus)", "output", "out-of-memory"),
    ("  process didn't exit successfully: `rustc --crate-name x` (signal: 9, SIGKILL: kill)", "output", "out-of-memory"),  # noqa: E501
    ("  \u2502 exit code: -9", "output", "out-of-memory"),
    ("reason: pip was killed by SIGKILL", "footer", "out-of-memory"),
    ("/usr/bin/ld: final link failed: No space left on device", "output", "no-space"),
    ("OSError: [Errno 27] File too large", "output", "no-space"),
    ("OSError: [Errno 122] Disk quota exceeded", "output", "no-space"),
    ("OSError: [Errno 30] Read-only file system: '/usr/local/lib/x'", "output", "sandbox-refused"),
    ("bwrap: Can't mount proc on /newroot/proc: Operation not permitted", "output", "sandbox-refused"),  # noqa: E501
    ("PermissionError: [Errno 13] Permission denied: '/etc/ld.so.conf.d/x.conf'", "output", "sandbox-refused"),  # noqa: E501
    ("ERROR: Package 'foo' requires a different Python: 3.11.7 not in '<3.8'", "output", "python-incompatible"),  # noqa: E501
    ("SyntaxError: Missing parentheses in call to 'print'. Did you mean print(...)?", "output", "python-incompatible"),  # noqa: E501
    ("SyntaxError: multiple exception types must be parenthesized", "output", "python-incompatible"),  # noqa: E501
    ("ModuleNotFoundError: No module named 'distutils'", "output", "python-incompatible"),
    ("src/x.c:12:5: error: implicit declaration of function \u2018_PyLong_AsInt\u2019", "output", "python-incompatible"),  # noqa: E501
    ("x.c:2:10: fatal error: ffi.h: No such file or directory", "output", "missing-dependency"),
    ("ERROR: No matching distribution found for cython>=3", "output", "missing-dependency"),
    ("\u00d7 installing build dependencies for foo did not run successfully.", "output", "missing-dependency"),  # noqa: E501
    ("ModuleNotFoundError: No module named 'Cython'", "output", "missing-dependency"),
    ("/usr/bin/ld: cannot find -lssl: No such file or directory", "output", "missing-dependency"),
    ("Package libffi was not found in the pkg-config search path.", "output", "missing-dependency"),
    ("CMake Error: Could NOT find ZLIB (missing: ZLIB_LIBRARY)", "output", "missing-dependency"),
    ("error: command 'gfortran' failed: No such file or directory", "output", "missing-dependency"),
    ("FileNotFoundError: [Errno 2] No such file or directory: 'cmake'", "output", "missing-dependency"),  # noqa: E501
    ("/bin/sh: 1: pkg-config: not found", "output", "missing-dependency"),
    ("error: can't find Rust compiler", "output", "missing-dependency"),
    ("src/x.c:2:35: error: expected ';' before '}' token", "output", "compiler-error"),
    ("error[E0308]: mismatched types", "output", "compiler-error"),
    ("Error compiling Cython file:", "output", "compiler-error"),
    ("error: command '/usr/bin/gcc' failed with exit code 1", "output", "compiler-error"),
    ("ImportError: cannot import name 'Feature' from 'setuptools'", "output", "sdist-broken"),
    ("AttributeError: module 'setuptools' has no attribute 'Feature'", "output", "sdist-broken"),
    ("Requested foo==1.0 from foo-1.0.tar.gz has inconsistent version: expected '1.0', but metadata has '1.0.0'", "output", "sdist-broken"),  # noqa: E501
    ("ERROR: Directory '.' does not appear to be a Python project", "output", "sdist-broken"),
    ("tarfile.ReadError: not a gzip file", "output", "sdist-broken"),
    ("configuration error: `project.name` must be pep508-identifier", "output", "sdist-broken"),
    ("ERROR: Could not find a version that satisfies the requirement foo==2.0", "output", "no-sdist-yet"),  # noqa: E501
    ("ERROR: No matching distribution found for foo==2.0", "output", "no-sdist-yet"),
    ("error: metadata-generation-failed", "output", "sdist-broken"),
]  # fmt: skip


def _framed(line: str, where: str) -> str:
    if where == "footer":
        return f"=== build output ===\nsome output\n=== end of build ===\n{line}\n"
    return f"=== build output ===\n{line}\n=== end of build ===\noutcome: failed\n"


def test_every_rule_has_an_example() -> None:
    assert len(EXAMPLES) == len(RULES)


@pytest.mark.parametrize(("index", "example"), list(enumerate(EXAMPLES)), ids=lambda v: str(v)[:40])
def test_each_rule_takes_its_example(index: int, example: tuple[str, str, str]) -> None:
    line, where, category = example
    found = triage(_framed(line, where))
    assert found.rule is RULES[index]
    assert found.category == category
    assert found.reason == line.strip().removeprefix("reason: ")


def test_every_rule_names_a_known_category() -> None:
    assert {rule.category for rule in RULES} <= set(CATEGORIES)


# --- what decides, and what is left alone --------------------------------------------------


def test_a_log_without_any_telling_line_is_unknown_with_no_reason() -> None:
    assert (triage("=== build output ===\nhello\n").category, triage("").reason) == (
        "unknown",
        None,
    )


def test_the_header_and_footer_are_not_read_as_output() -> None:
    """A project named like an error, or a builder's reason quoting one, decides nothing."""
    log = (
        "=== wheelfarm build ===\nproject: memoryerror\nreason: MemoryError\n"
        "=== build output ===\nall fine\n=== end of build ===\nreason: MemoryError\n"
    )
    assert triage(log).category == "unknown"


def test_a_log_from_before_the_frame_is_read_whole_and_its_reported_reason_counts() -> None:
    assert triage("x.c:1:1: error: bad\n").category == "compiler-error"
    assert triage("Collecting foo\n", "timed out after 60 s").category == "timeout"


# pip's words around a hook that failed without saying why, as for SystemExit("...")
_HOOK_FAILED = """=== build output ===
  \u00d7 Preparing metadata (pyproject.toml) did not run successfully.
  \u2502 exit code: 1
  \u2570\u2500> [1 lines of output]
      deliberate build failure
      [end of output]
error: metadata-generation-failed
"""


def test_a_hook_that_failed_without_a_telling_line_is_told_by_its_last_word() -> None:
    found = triage(_HOOK_FAILED)
    assert (found.category, found.reason) == ("sdist-broken", "deliberate build failure")
    unknown = triage(_HOOK_FAILED.replace("error: metadata-generation-failed\n", ""))
    assert (unknown.category, unknown.reason) == ("unknown", "deliberate build failure")


def test_resources_explain_the_compiler_error_they_caused() -> None:
    log = "=== build output ===\nx.c:1:1: error: bad\nvirtual memory exhausted: x\n"
    assert triage(log).category == "out-of-memory"


def test_the_masters_block_is_not_triaged_again() -> None:
    stored = triaged_log("=== build output ===\nhello\n=== end of build ===\n", "failed", "r")
    assert MASTER_MARKER in stored.text
    again = triaged_log(stored.text + "", "failed", "r")
    assert again.text == stored.text
    assert builder_part(stored.text) == "=== build output ===\nhello\n=== end of build ===\n"


def test_a_framed_log_without_a_footer_is_said_to_be_cut_off() -> None:
    header = "=== wheelfarm build ===\nproject: x\n=== build output ===\n"
    assert "it was cut off" in triaged_log(f"{header}partial", "failed", None).text
    complete = triaged_log(f"{header}x\n=== end of build ===\n", "failed", None)
    assert "cut off" not in complete.text
    assert "cut off" not in triaged_log("a log from before the frame\n", "failed", None).text


def test_a_build_that_did_not_fail_is_not_triaged() -> None:
    stored = triaged_log("MemoryError\n", "built", None)
    assert (stored.category, stored.reason) == (None, None)
    assert stored.text == f"MemoryError\n{MASTER_MARKER}\nrecorded: built\n"


def test_a_died_build_gets_a_log_that_says_so() -> None:
    stored = died_log(DiedBuild("foo", "1.0", "cp311", "pi4", 1000.0), 1600.0, "lease expired")
    assert stored.category == "build-died"
    assert "outcome: died\nreason: lease expired\n" in stored.text
    assert "project: foo\n" in stored.text and "duration: 600.0 s" in stored.text


# --- hostile logs ----------------------------------------------------------------------------


def test_colour_escapes_do_not_hide_a_compiler_error() -> None:
    line = "\x1b[01m\x1b[Kx.c:2:3:\x1b[m\x1b[K \x1b[01;31m\x1b[Kerror: \x1b[m\x1b[Kbad thing"
    found = triage(f"=== build output ===\n{line}\n")
    assert (found.category, found.reason) == ("compiler-error", "x.c:2:3: error: bad thing")


def test_a_huge_line_is_cut_and_its_reason_bounded() -> None:
    line = "MemoryError " + "x" * (LINE_CHARS * 50)
    found = triage(line)
    assert found.category == "out-of-memory"
    assert found.reason is not None and len(found.reason) == REASON_CHARS


def test_a_reason_shows_no_control_or_bidi_characters() -> None:
    found = triage("MemoryError \x07\u202eevil\x00\n")
    assert found.reason is not None
    assert not re.search("[\x00-\x1f\x7f\u202a-\u202e]", found.reason)


@pytest.mark.parametrize(
    "log",
    [
        "error: " * 200_000,  # a long line of near-misses
        ("x.c:" + "1:" * 50_000 + "\n") * 20,
        "No matching distribution found for " * 30_000,
        "\x1b]" + "a" * 1_000_000,  # an escape that never ends
        "\r" * 1_000_000,
    ],
    ids=["near-misses", "colons", "repeats", "open-escape", "carriage-returns"],
)
def test_hostile_logs_are_triaged_without_crashing(log: str) -> None:
    found = triage(log)
    assert found.category in CATEGORIES
