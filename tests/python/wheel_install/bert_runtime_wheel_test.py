"""bert-runtime installs alone and pulls in no web framework, CDKTF, Locust or PyTorch."""

from pathlib import Path

from wheel_install.wheel_check import INFRA, LOAD, WEB, WheelExpectation, check_wheel


def test_bert_runtime_wheel_installs_alone_without_web_infra_or_load_stacks(tmp_path: Path) -> None:
    check_wheel(
        WheelExpectation("bert-runtime", "bert_runtime", forbidden=WEB | INFRA | LOAD | {"torch"}),
        tmp_path,
    )
