"""bert-serve-infra installs without the web, load or model-serving stacks."""

from pathlib import Path

from wheel_install.wheel_check import LOAD, RUNTIME, WEB, WheelExpectation, check_wheel


def test_infra_wheel_installs_alone(tmp_path: Path) -> None:
    check_wheel(
        WheelExpectation("bert-serve-infra", "infra_cdktf", forbidden=WEB | LOAD | RUNTIME),
        tmp_path,
    )
