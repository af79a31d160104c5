"""bert-api installs with bert-runtime and no CDKTF, Locust or PyTorch."""

from pathlib import Path

from wheel_install.wheel_check import INFRA, LOAD, WheelExpectation, check_wheel


def test_bert_api_wheel_brings_bert_runtime_and_nothing_of_infra_or_load(tmp_path: Path) -> None:
    expectation = WheelExpectation(
        "bert-api",
        "bert_api",
        forbidden=INFRA | LOAD | {"torch"},
        required=frozenset({"bert-runtime"}),
    )
    check_wheel(expectation, tmp_path)
