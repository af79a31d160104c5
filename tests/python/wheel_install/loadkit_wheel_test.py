"""bert-serve-loadkit installs without the web, infra or model-serving stacks."""

from pathlib import Path

from wheel_install.wheel_check import INFRA, RUNTIME, WEB, WheelExpectation, check_wheel


def test_loadkit_wheel_installs_alone(tmp_path: Path) -> None:
    check_wheel(
        WheelExpectation("bert-serve-loadkit", "loadkit", forbidden=WEB | INFRA | RUNTIME), tmp_path
    )
