"""Translate the user's pip configuration into the Pants options that reach pex's pip.

Why: Pants runs pex with `PIP_CONFIG_FILE=/dev/null` (pants.toml, [subprocess-environment]), because the pip
inside pex reads global pip config files even in `--isolated` mode, and a global `constraint =` line makes
every download fail with a bare AssertionError. /dev/null is the only value that stops pip from reading
/etc/pip.conf. This script keeps what a pip config legitimately gives a build (a package index, a CA bundle,
a proxy) by printing the equivalent Pants/pex settings as KEY=VALUE lines for `./pants` to export:

- `cert`                          -> PANTS_CA_CERTS_PATH (Pants hands it to pex as `--cert`)
- `index-url`, `extra-index-url`  -> PANTS_PYTHON_REPOS_INDEXES (network indexes only; `no-index` -> [])
- `proxy`                         -> https_proxy / http_proxy (passed through by pants.toml)

Dropped on purpose: `constraint`, `requirement`, `find-links`, `file://` indexes, `no-binary`, ...: they
change what a resolve picks, and pex records every artifact's URL in the lockfiles, which must not depend
on one machine's files. A variable the user already set (PANTS_CA_CERTS_PATH, ...) is left alone.

Standard library only: it runs on the Python 3.9 that runs Pants, before Pants starts. File discovery
follows pip 23 (`pip config debug` lists the same files).
"""

from __future__ import annotations

import configparser
import os
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional

PYPI = "https://pypi.org/simple/"
KEYS = ("index-url", "extra-index-url", "no-index", "cert", "proxy")
# pex resolves with `pip download` and builds with `pip wheel`: their sections apply after [global].
SECTIONS = ("global", "download", "wheel")


def config_files(env: Dict[str, str], home: Path, etc: Path) -> Iterator[Path]:
    """The files pip reads, lowest priority first: global, user, then PIP_CONFIG_FILE."""
    env_file = env.get("PIP_CONFIG_FILE")
    if env_file == os.devnull:
        return
    for directory in env.get("XDG_CONFIG_DIRS", "/etc/xdg").split(os.pathsep):
        if directory:
            yield Path(directory) / "pip" / "pip.conf"
    yield etc / "pip.conf"
    if not (env_file and Path(env_file).exists()):
        yield home / ".pip" / "pip.conf"
        yield Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "pip" / "pip.conf"
    if env_file:
        yield Path(env_file)


def read_settings(env: Dict[str, str], home: Path, etc: Path) -> Dict[str, str]:
    """The effective value of each key in KEYS: files in pip's order, then PIP_* variables."""
    settings: Dict[str, str] = {}
    for path in config_files(env, home, etc):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError) as error:
            print(f"pants bootstrap: ignoring unreadable pip config {path}: {error}", file=sys.stderr)
            continue
        for section in SECTIONS:
            if parser.has_section(section):
                for key in KEYS:
                    if parser.has_option(section, key):
                        settings[key] = parser.get(section, key)
    for key in KEYS:
        value = env.get("PIP_" + key.upper().replace("-", "_"))
        if value is not None:
            settings[key] = value
    return settings


def is_network_url(url: str) -> bool:
    return url.startswith(("https://", "http://"))


def is_true(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def indexes_for(settings: Dict[str, str]) -> Optional[List[str]]:
    """Pants' index list, or None when it is PyPI alone (Pants' own default)."""
    if is_true(settings.get("no-index", "")):
        return []
    primary = settings.get("index-url", "").strip() or PYPI
    extras = settings.get("extra-index-url", "").split()
    indexes = [url for url in [primary, *extras] if is_network_url(url)]
    if not indexes:
        indexes = [PYPI]
    return None if indexes == [PYPI] else indexes


def pants_environment(env: Dict[str, str], home: Path, etc: Path = Path("/etc")) -> Dict[str, str]:
    settings = read_settings(env, home, etc)
    out: Dict[str, str] = {}
    cert = settings.get("cert", "").strip()
    if cert and "PANTS_CA_CERTS_PATH" not in env:
        out["PANTS_CA_CERTS_PATH"] = cert
    indexes = indexes_for(settings)
    if indexes is not None and "PANTS_PYTHON_REPOS_INDEXES" not in env:
        out["PANTS_PYTHON_REPOS_INDEXES"] = repr(indexes)
    proxy = settings.get("proxy", "").strip()
    if proxy and not any(name in env for name in ("https_proxy", "HTTPS_PROXY")):
        out["https_proxy"] = proxy
        out["http_proxy"] = proxy
    return out


def main() -> None:
    for key, value in pants_environment(dict(os.environ), Path.home()).items():
        print(f"{key}={value}")


if __name__ == "__main__":
    main()
