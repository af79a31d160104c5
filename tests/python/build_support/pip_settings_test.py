"""The launcher keeps a pip config's index, CA bundle and proxy for Pants; drops what breaks pex."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


def _load_pip_settings() -> ModuleType:
    path = Path("build-support/pip_settings.py")
    spec = importlib.util.spec_from_file_location("pip_settings", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pip_settings"] = module
    spec.loader.exec_module(module)
    return module


pip_settings = _load_pip_settings()


def _environment(env: dict[str, str], home: Path) -> dict[str, str]:
    """pants_environment with an empty /etc, so the machine's own /etc/pip.conf stays out of it."""
    etc = home.parent / "etc"
    etc.mkdir(exist_ok=True)
    return pip_settings.pants_environment(env, home, etc)  # type: ignore[no-any-return]


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def _global_config(tmp_path: Path, body: str) -> dict[str, str]:
    """A throwaway global pip config, found as pip finds it (XDG_CONFIG_DIRS/pip/pip.conf)."""
    (tmp_path / "xdg" / "pip").mkdir(parents=True)
    (tmp_path / "xdg" / "pip" / "pip.conf").write_text(body)
    return {"XDG_CONFIG_DIRS": str(tmp_path / "xdg")}


def test_a_constraint_is_dropped_and_the_ca_bundle_kept(tmp_path: Path, home: Path) -> None:
    env = _global_config(
        tmp_path, "[global]\nconstraint = /etc/constraints.txt\ncert = /etc/ssl/ca.pem\n"
    )
    assert _environment(env, home) == {"PANTS_CA_CERTS_PATH": "/etc/ssl/ca.pem"}


def test_a_network_index_replaces_pypi_and_local_ones_are_dropped(
    tmp_path: Path, home: Path
) -> None:
    env = _global_config(
        tmp_path,
        "[global]\nindex-url = https://mirror.example/simple\n"
        "extra-index-url = file:///opt/pypi/simple\n  https://extra.example/simple\n"
        "find-links = /opt/wheels\n",
    )
    out = _environment(env, home)
    assert out == {
        "PANTS_PYTHON_REPOS_INDEXES": "['https://mirror.example/simple', 'https://extra.example/simple']"
    }


def test_only_local_extra_indexes_leave_pants_default(tmp_path: Path, home: Path) -> None:
    (home / ".config" / "pip").mkdir(parents=True)
    (home / ".config" / "pip" / "pip.conf").write_text(
        "[global]\nextra-index-url = file:///opt/pypi/simple\nfind-links = /opt/wheels\n"
    )
    assert _environment({}, home) == {}


def test_user_config_overrides_global_and_variables_override_both(
    tmp_path: Path, home: Path
) -> None:
    env = _global_config(tmp_path, "[global]\ncert = /global.pem\nproxy = http://global:3128\n")
    (home / ".pip").mkdir()
    (home / ".pip" / "pip.conf").write_text("[global]\ncert = /user.pem\n")
    assert _environment(env, home)["PANTS_CA_CERTS_PATH"] == "/user.pem"
    out = _environment({**env, "PIP_CERT": "/env.pem"}, home)
    assert out == {
        "PANTS_CA_CERTS_PATH": "/env.pem",
        "https_proxy": "http://global:3128",
        "http_proxy": "http://global:3128",
    }


def test_settings_the_user_gave_pants_win(tmp_path: Path, home: Path) -> None:
    env = _global_config(tmp_path, "[global]\ncert = /pip.pem\nindex-url = https://m/simple\n")
    env |= {"PANTS_CA_CERTS_PATH": "/mine.pem", "PANTS_PYTHON_REPOS_INDEXES": "[]"}
    assert _environment(env, home) == {}


def test_pip_config_file_devnull_reads_nothing(tmp_path: Path, home: Path) -> None:
    env = _global_config(tmp_path, "[global]\ncert = /pip.pem\n")
    assert _environment({**env, "PIP_CONFIG_FILE": "/dev/null"}, home) == {}


def test_no_index_gives_pants_an_empty_index_list(tmp_path: Path, home: Path) -> None:
    env = _global_config(tmp_path, "[install]\nno-index = true\n[global]\nno-index = yes\n")
    assert _environment(env, home) == {"PANTS_PYTHON_REPOS_INDEXES": "[]"}


def test_an_unreadable_config_is_skipped_with_a_warning(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = _global_config(tmp_path, "this is not an ini file")
    assert _environment(env, home) == {}
    assert "ignoring unreadable pip config" in capsys.readouterr().err


def test_etc_pip_conf_is_read_after_xdg(tmp_path: Path, home: Path) -> None:
    env = _global_config(tmp_path, "[global]\ncert = /xdg.pem\n")
    (home.parent / "etc").mkdir()
    (home.parent / "etc" / "pip.conf").write_text("[download]\ncert = /etc.pem\n")
    assert _environment(env, home) == {"PANTS_CA_CERTS_PATH": "/etc.pem"}
