"""Why a build failed, read from its log: a category and the line that says so.

A failed build's reason used to be pip's last error line, which is nearly always the same
summary ("Failed to build 'markupsafe' when getting requirements to build wheel") while the
cause ("cannot import name 'Feature' from 'setuptools'") sits twenty lines above it. The master
reads the log the builder uploaded against :data:`RULES`, one table: the first row whose
pattern matches a line gives the category, and that line (the first one it matches) becomes
the reason. The master decides rather than the builder, so the rules can change and be run
again over stored logs (``wheelfarm builds --retriage``).

Rows come in order of precedence: a resource that ran out explains the compiler error it
caused, and a missing header explains the failed compile. Output rows read pip's output;
footer rows read what the builder wrote after it (:mod:`wheelfarm.builder.log_frame`), or the
reason it reported when the log has no footer (logs from before the frame). The log is
hostile text: colour escapes are removed before matching, lines are cut to
:data:`LINE_CHARS` before any pattern sees them (no pattern has an unbounded repeat that
could backtrack over a long line), and the reason is one shown line of at most
:data:`REASON_CHARS` characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from wheelfarm.log_markers import LOG_END_MARKER, LOG_OUTPUT_MARKER
from wheelfarm.names import shown_text

__all__ = [
    "CATEGORIES",
    "CATEGORY_WORDS",
    "LINE_CHARS",
    "MASTER_MARKER",
    "REASON_CHARS",
    "RULES",
    "Rule",
    "Triage",
    "builder_part",
    "triage",
]

#: The line the master's own block at the end of a stored log opens with.
MASTER_MARKER: Final = "=== wheelfarm master ==="

#: Every category, in the order pages list them.
CATEGORIES: Final = (
    "out-of-memory",
    "no-space",
    "timeout",
    "build-died",
    "sandbox-refused",
    "python-incompatible",
    "missing-dependency",
    "compiler-error",
    "sdist-broken",
    "no-sdist-yet",
    "unknown",
)

#: Each category in a few words, for pages and the command line.
CATEGORY_WORDS: Final = {
    "out-of-memory": "ran out of memory",
    "no-space": "ran out of disk space or hit the file-size limit",
    "timeout": "ran past its time limit",
    "build-died": "its builder went silent",
    "sandbox-refused": "the sandbox refused what it did",
    "python-incompatible": "not for this Python version",
    "missing-dependency": "a library, tool or build requirement is missing",
    "compiler-error": "the compiler refused the code",
    "sdist-broken": "the source distribution does not build with today's tools",
    "no-sdist-yet": "the index has no source distribution of it (yet)",
    "unknown": "no rule knows this failure",
}

LINE_CHARS: Final = 2000  # a line is cut to this before matching
REASON_CHARS: Final = 300  # a reason is one line of a page

Where = Literal["output", "footer"]


@dataclass(frozen=True)
class Rule:
    """One row: where to look, what to look for, what it means, and why it means that."""

    category: str
    where: Where
    pattern: re.Pattern[str]
    why: str


def _rule(category: str, where: Where, pattern: str, why: str) -> Rule:
    return Rule(category, where, re.compile(pattern, re.MULTILINE), why)


# gcc and clang quote with U+2018 and U+2019 in a UTF-8 locale (the sandbox's), '' otherwise.
_Q = "[\u2018\u2019'`\"]"

#: The rules, most telling first. ``tests/farm/test_triage.py`` has a case for every row.
RULES: Final = (
    # --- the build did not end by itself ---------------------------------------------------
    _rule("build-died", "footer", r"^outcome: died\b", "the master closed a build whose builder went silent"),  # noqa: E501
    _rule("timeout", "footer", r"^reason: timed out after\b", "the sandbox killed it at its time limit"),  # noqa: E501
    _rule("timeout", "footer", r"^outcome: timeout\b", "the sandbox killed it at its time limit"),
    # --- a resource ran out -----------------------------------------------------------------
    _rule("out-of-memory", "output", r"virtual memory exhausted", "gcc's words when malloc fails"),
    _rule("out-of-memory", "output", r"\bout of memory allocating\b", "cc1's words when malloc fails"),  # noqa: E501
    _rule("out-of-memory", "output", r"Killed signal terminated program", "the kernel's OOM killer took a compiler"),  # noqa: E501
    _rule("out-of-memory", "output", r"\bstd::bad_alloc\b", "a C++ program could not allocate"),
    _rule("out-of-memory", "output", r"^[ \t]*MemoryError\b", "Python could not allocate (the address-space limit)"),  # noqa: E501
    _rule("out-of-memory", "output", r"\[Errno 12\] Cannot allocate memory", "fork or mmap refused: ENOMEM"),  # noqa: E501
    _rule("out-of-memory", "output", r"internal compiler error: Killed \(program ", "gcc's words when the OOM killer took cc1"),  # noqa: E501
    _rule("out-of-memory", "output", r"\(signal: 9, SIGKILL: kill\)", "cargo's words when the OOM killer took rustc"),  # noqa: E501
    _rule("out-of-memory", "output", r"^[ \t]*\W?[ \t]*exit code: -9[ \t]*$", "pip's words when the OOM killer took the build backend"),  # noqa: E501
    _rule("out-of-memory", "footer", r"^reason: pip was killed by SIGKILL\b", "the OOM killer took pip itself (the builder's own kills are timeouts and cancels)"),  # noqa: E501
    _rule("no-space", "output", r"No space left on device|\[Errno 28\]", "ENOSPC: the disk is full"),  # noqa: E501
    _rule("no-space", "output", r"\[Errno 27\] File too large|File size limit exceeded", "EFBIG or SIGXFSZ: the sandbox's file-size limit"),  # noqa: E501
    _rule("no-space", "output", r"Disk quota exceeded", "EDQUOT: the user's quota is used up"),
    # --- the sandbox said no ------------------------------------------------------------------
    _rule("sandbox-refused", "output", r"\[Errno 30\] Read-only file system", "a write outside the build directory"),  # noqa: E501
    _rule("sandbox-refused", "output", r"^bwrap: ", "bubblewrap itself refused"),
    _rule("sandbox-refused", "output", r"Permission denied: '/(?:usr|etc|opt|var|root|home|srv|run|lib|bin)\b", "a write or read of the machine's files"),  # noqa: E501
    # --- the Python is not the one the project is for --------------------------------------
    _rule("python-incompatible", "output", r"requires a different Python: ", "pip's Requires-Python check"),  # noqa: E501
    _rule("python-incompatible", "output", r"SyntaxError: Missing parentheses in call to " + _Q + "?print", "Python 2 code"),  # noqa: E501
    _rule("python-incompatible", "output", r"SyntaxError: (?:multiple exception types must be parenthesized|leading zeros in decimal integer literals)", "Python 2 code"),  # noqa: E501
    _rule("python-incompatible", "output", r"No module named " + _Q + r"distutils" + _Q, "distutils left the standard library in 3.12"),  # noqa: E501
    _rule("python-incompatible", "output", r"(?:implicit declaration of function|undeclared|has no member named) " + _Q + r"_?Py", "C code for another Python's C API"),  # noqa: E501
    # --- something the build needs is not there ---------------------------------------------
    _rule("missing-dependency", "output", r"fatal error: [\w./+-]+: No such file or directory", "a header of a library that is not installed"),  # noqa: E501
    _rule("missing-dependency", "output", r"No matching distribution found for (?!.*==)", "a build requirement the index lacks (a range, not our pinned release)"),  # noqa: E501
    _rule("missing-dependency", "output", r"installing build dependencies for \S+ did not run successfully", "pip could not install what the sdist says it needs to build"),  # noqa: E501
    _rule("missing-dependency", "output", r"ModuleNotFoundError: No module named ", "a build requirement the sdist does not declare"),  # noqa: E501
    _rule("missing-dependency", "output", r"cannot find -l[\w.+-]+", "the linker lacks a library"),
    _rule("missing-dependency", "output", r"was not found in the pkg-config search path", "pkg-config lacks a library"),  # noqa: E501
    _rule("missing-dependency", "output", r"Could NOT find \w+", "CMake lacks a package"),
    _rule("missing-dependency", "output", r"error: command " + _Q + r"[^'\u2018\u2019\s]{1,200}" + _Q + " failed: No such file or directory", "a tool the build runs is not installed"),  # noqa: E501
    _rule("missing-dependency", "output", r"No such file or directory: " + _Q + r"(?:cmake|ninja|make|gcc|g\+\+|cc|c\+\+|gfortran|pkg-config|cargo|rustc|swig|nasm|meson)" + _Q, "a tool the build runs is not installed"),  # noqa: E501
    _rule("missing-dependency", "output", r"\b(?:cmake|ninja|gfortran|pkg-config|cargo|rustc|swig|nasm|meson): (?:command )?not found", "a tool the build runs is not installed"),  # noqa: E501
    _rule("missing-dependency", "output", r"can't find Rust compiler", "setuptools-rust without a Rust toolchain"),  # noqa: E501
    # --- the compiler refused the code -------------------------------------------------------
    _rule("compiler-error", "output", r"^[ \t]*[\w./+-]{1,300}\.(?:c|cc|cpp|cxx|h|hh|hpp|f|f90|for|pyx|pxd|S):\d+(?::\d+)?: (?:fatal )?error: ", "gcc's or clang's error at a source line"),  # noqa: E501
    _rule("compiler-error", "output", r"^[ \t]*error\[E\d{4}\]", "rustc's error"),
    _rule("compiler-error", "output", r"Error compiling Cython file", "Cython refused the code"),
    _rule("compiler-error", "output", r"error: command " + _Q + r"[^'\u2018\u2019\s]{0,200}(?:gcc|g\+\+|cc|c\+\+|clang|clang\+\+|gfortran)" + _Q + " failed", "a compiler failed (its own message came earlier)"),  # noqa: E501
    # --- the sdist does not build with today's tools ------------------------------------------
    _rule("sdist-broken", "output", r"ImportError: cannot import name " + _Q + r"\w+" + _Q + r" from " + _Q + r"(?:setuptools|distutils|pkg_resources)", "setup.py uses an API setuptools removed"),  # noqa: E501
    _rule("sdist-broken", "output", r"AttributeError: module " + _Q + r"(?:setuptools|distutils|pkg_resources)", "setup.py uses an API setuptools removed"),  # noqa: E501
    _rule("sdist-broken", "output", r"has inconsistent (?:version|name): ", "the sdist's metadata disagrees with its file name"),  # noqa: E501
    _rule("sdist-broken", "output", r"does not appear to be a Python project", "the sdist has no setup.py nor pyproject.toml"),  # noqa: E501
    _rule("sdist-broken", "output", r"(?:ReadError|not a gzip file|is not a valid (?:tar|zip) file)", "the archive is damaged"),  # noqa: E501
    _rule("sdist-broken", "output", r"(?:TOMLDecodeError|[Ii]nvalid pyproject\.toml|configuration error: )", "the sdist's pyproject.toml is invalid"),  # noqa: E501
    # --- the index has no sdist of this release (yet) -----------------------------------------
    _rule("no-sdist-yet", "output", r"Could not find a version that satisfies the requirement ", "pip found no file of the release it was asked for"),  # noqa: E501
    _rule("no-sdist-yet", "output", r"No matching distribution found for ", "pip found no file of the release it was asked for"),  # noqa: E501
    # --- last: setup.py failed in a way no row above names --------------------------------------
    _rule("sdist-broken", "output", r"error: metadata-generation-failed", "setup.py failed before it said what it builds"),  # noqa: E501
)  # fmt: skip


@dataclass(frozen=True)
class Triage:
    """A failed build's category, the line that says so (None when none does), and the rule."""

    category: str
    reason: str | None
    rule: Rule | None = None


# CSI and OSC escape sequences (colours, titles, hyperlinks), then any other lone ESC.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]{0,32}[ -/]{0,8}[@-~]|\x1b\][^\x07\x1b]{0,512}(?:\x07|\x1b\\)?|\x1b"
)


def builder_part(log: str) -> str:
    """The log without the master's block at its end (:data:`MASTER_MARKER`)."""
    at = log.rfind(f"\n{MASTER_MARKER}\n")
    if at < 0:
        return log[len(MASTER_MARKER) + 1 :] if log.startswith(f"{MASTER_MARKER}\n") else log
    return log[: at + 1]


def _sections(log: str, reason: str | None) -> dict[Where, str]:
    """pip's output and the builder's footer; the reported reason stands in for a footer."""
    text = builder_part(log)
    start = text.find(f"{LOG_OUTPUT_MARKER}\n")
    output_start = start + len(LOG_OUTPUT_MARKER) + 1 if start >= 0 else 0
    end = text.rfind(f"\n{LOG_END_MARKER}\n")
    if end >= output_start - 1 and end >= 0:
        output, footer = text[output_start : end + 1], text[end + len(LOG_END_MARKER) + 2 :]
    else:
        output, footer = text[output_start:], ""
    if not footer and reason:
        footer = f"reason: {reason}\n"
    return {"output": _clean(output), "footer": _clean(footer)}


def _clean(text: str) -> str:
    """Escapes out, carriage-return progress bars split, every line cut to LINE_CHARS."""
    text = _ESCAPES.sub("", text).replace("\r", "\n")
    if not any(len(line) > LINE_CHARS for line in text.split("\n")):
        return text
    return "\n".join(line[:LINE_CHARS] for line in text.split("\n"))


def _line_at(text: str, position: int) -> str:
    start = text.rfind("\n", 0, position) + 1
    end = text.find("\n", position)
    return text[start : end if end >= 0 else len(text)]


def _shown(line: str) -> str:
    text = shown_text(" ".join(line.split()))
    if text.startswith("reason: "):
        text = text[len("reason: ") :]
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


# pip closes a failed hook's output with this line; the line before it is the hook's last word.
_END_OF_OUTPUT = re.compile(r"^[ \t]*\[end of output\][ \t]*$", re.MULTILINE)


def _last_words(output: str) -> str | None:
    """The last non-empty line of the first failed hook's output (an exception's message,
    usually), or None when pip shows no hook output."""
    found = _END_OF_OUTPUT.search(output)
    if found is None:
        return None
    for line in reversed(
        output[max(0, found.start() - 100 * LINE_CHARS) : found.start()].split("\n")
    ):
        if line.strip():
            return _shown(line)
    return None


def triage(log: str, reason: str | None = None) -> Triage:
    """The category of a failed build from its log (and the builder's reason, for a log
    without a footer), and the most telling line as its reason.

    When only the last row (setup.py failed, nothing says why) or no row matches, the telling
    line is the failed hook's last word (``SystemExit``'s message, say) where pip shows one.
    """
    sections = _sections(log, reason)
    for rule in RULES:
        found = rule.pattern.search(sections[rule.where])
        if found is not None:
            line = _shown(_line_at(sections[rule.where], found.start()))
            if rule is RULES[-1]:
                line = _last_words(sections["output"]) or line
            return Triage(rule.category, line, rule)
    return Triage("unknown", _last_words(sections["output"]))
