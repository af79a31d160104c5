"""The code's layout rules, checked on the sources: small modules, no import cycle, and
dependencies that point one way (DESIGN.md: bert_api -> bert_runtime; loadkit and infra_cdktf know
the service only over HTTP and through its settings; serving never imports preparation).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path("src/python")
PACKAGES = ("bert_runtime", "bert_api", "loadkit", "infra_cdktf")
MAX_LINES = 300


def _modules() -> dict[str, Path]:
    """Every first-party module by dotted name (packages by their __init__)."""
    found: dict[str, Path] = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_test_or_benchmark(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return (
        last.endswith("_test")
        or last in {"conftest", "testing"}
        or ".testutil" in name
        or ".bench" in name
        or name.endswith("snapshots")
    )


def _imports(name: str, path: Path) -> Iterator[str]:
    """First-party modules `name` imports (outside `if TYPE_CHECKING:` blocks)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` names a module when pkg.mod is one.
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name and target.split(".")[0] in PACKAGES:
                yield target


GRAPH = {name: set(_imports(name, path)) for name, path in MODULES.items()}


def test_no_module_outside_tests_and_benchmarks_is_over_300_lines() -> None:
    long = {
        name: lines
        for name, path in MODULES.items()
        if not _is_test_or_benchmark(name)
        and (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle() -> None:
    # A package's __init__ importing its own modules is how packages work, not a cycle.
    graph = {
        name: {t for t in targets if not name.startswith(t + ".")}
        for name, targets in GRAPH.items()
    }
    assert _cycles(graph) == []


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("bert_runtime", ("bert_api", "loadkit", "infra_cdktf")),
        ("loadkit", ("bert_api", "bert_runtime", "infra_cdktf")),
        ("infra_cdktf", ("bert_runtime", "loadkit")),
        ("bert_runtime.serving", ("bert_runtime.preparation",)),
    ],
)
def test_dependencies_point_one_way(package: str, forbidden: tuple[str, ...]) -> None:
    wrong = {
        name: sorted(t for t in targets if t.startswith(forbidden))
        for name, targets in GRAPH.items()
        if (name == package or name.startswith(package + ".")) and not _is_test_or_benchmark(name)
    }
    assert not {k: v for k, v in wrong.items() if v}
