"""What a root copies from its host: the apt sources to fetch from, CA bundle, pip settings.

No mirror's or index's address is written into wheelfarm: a root fetches its packages where
this machine's apt does (``/etc/apt/sources.list`` and ``sources.list.d``, one-line or deb822
format), and its pip reaches the index through the host's system-wide pip configuration
(``/etc/pip.conf``, ``/etc/xdg/pip/pip.conf``; never a user's, which may point at the host's
own wheels) and CA bundle.
"""

from __future__ import annotations

import configparser
from pathlib import Path

__all__ = ["CA_BUNDLE", "PIP_CONFIGS", "apt_sources", "config_files"]

APT_DIR = Path("/etc/apt")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PIP_CONFIGS = (Path("/etc/pip.conf"), Path("/etc/xdg/pip/pip.conf"))


def _stanzas(text: str) -> list[dict[str, str]]:
    """deb822 paragraphs: ``Key: value`` fields (continuation lines joined), comments dropped."""
    found: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                found.append(current)
            current, key = {}, ""
        elif line[0] in " \t" and key:
            current[key] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            current[key] = value.strip()
    if current:
        found.append(current)
    return found


def _entries(apt_dir: Path) -> list[tuple[str, str, str, str]]:
    """(options, uri, suite, components) of every enabled ``deb`` entry, in apt's order."""
    found: list[tuple[str, str, str, str]] = []
    one_line = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = line.split("#", 1)[0].split()
            if not words or words[0] != "deb":
                continue
            options = ""
            if len(words) > 1 and words[1].startswith("["):
                end = next(i for i, word in enumerate(words) if word.endswith("]"))
                options = " ".join(words[1 : end + 1])[1:-1].strip()
                words = [words[0], *words[end + 1 :]]
            if len(words) >= 3:
                found.append((options, words[1], words[2], " ".join(words[3:]) or "main"))
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for stanza in _stanzas(path.read_text()):
            if "deb" not in stanza.get("types", "").split():
                continue
            if stanza.get("enabled", "yes").lower() == "no":
                continue
            options = f"signed-by={stanza['signed-by']}" if "signed-by" in stanza else ""
            components = stanza.get("components", "main")
            for uri in stanza.get("uris", "").split():
                for suite in stanza.get("suites", "").split():
                    found.append((options, uri, suite, components))
    return found


def apt_sources(distro: str, apt_dir: Path = APT_DIR) -> list[str]:
    """One-line apt entries for ``distro`` from this machine's sources, ``main`` only.

    Each host suite keeps its suffix and takes ``distro``'s name (``bookworm-security`` on a
    trixie host becomes ``trixie-security``), so a root of another release uses the same
    mirrors. Duplicates are dropped.
    """
    lines: list[str] = []
    for options, uri, suite, _components in _entries(apt_dir):
        _, dash, suffix = suite.partition("-")
        renamed = f"{distro}{dash}{suffix}" if not suite.endswith("/") else suite
        bracket = f"[{options}] " if options else ""
        line = f"deb {bracket}{uri} {renamed} main"
        if line not in lines:
            lines.append(line)
    return lines


def config_files(
    ca_bundle: Path = CA_BUNDLE, pip_configs: tuple[Path, ...] = PIP_CONFIGS
) -> list[Path]:
    """The host files a root takes: the CA bundle, system pip configs and the files they name.

    A pip setting whose value is an absolute path to an existing file (``cert``,
    ``constraint``, ``requirement``) brings that file along, at the same path.
    """
    found = [ca_bundle] if ca_bundle.is_file() else []
    for config in pip_configs:
        if not config.is_file():
            continue
        found.append(config)
        parser = configparser.RawConfigParser()
        try:
            parser.read(config)
        except configparser.Error:
            continue
        for section in parser.sections():
            for value in parser[section].values():
                for word in value.split():
                    candidate = Path(word)
                    if candidate.is_absolute() and candidate.is_file():
                        found.append(candidate)
    return list(dict.fromkeys(found))
