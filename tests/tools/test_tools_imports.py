"""The tools' and analyses' import structure, read from the source with ast (nothing is
imported or run).

No cycle among the modules under tools/ and analysis/, the analyses' shared helpers import none
of the commands, the dispatcher only dispatches, and no tool imports train.py: building a config
is study/config.py's job, shared by train.py and the tools.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools"
ANALYSIS = REPO / "analysis"
COMMANDS = {f"analysis.{name}"
            for name in ("init_stats", "tsne", "losses", "nearest_words")}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def tool_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted([*TOOLS.rglob("*.py"),
                                                        *ANALYSIS.rglob("*.py")])}


def imported_names(path: Path) -> set[str]:
    """Every module an import statement anywhere in ``path`` names, including imports inside
    functions (a lazy import is still an import), with relative imports resolved and
    ``from package import module`` counted as the module."""
    inside = path.resolve().is_relative_to(REPO)
    name = module_name(path) if inside else ""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def tool_graph() -> dict[str, set[str]]:
    modules = tool_modules()
    return {name: {other for other in imported_names(path) if other in modules and other != name}
            for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A list of modules that import each other in a ring, or None (depth-first search)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_ring_and_passes_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_import_walk_sees_lazy_relative_and_from_package_imports(tmp_path):
    module = tmp_path / "mod.py"
    module.write_text("def f():\n    import train\n"
                      "from analysis import common\n")
    assert {"train", "analysis.common"} <= imported_names(module)
    inside = imported_names(ANALYSIS / "tsne.py")
    assert "analysis.common" in inside and "datasets.classes" in inside  # a lazy import


def test_no_import_cycle_among_the_tools():
    graph = tool_graph()
    assert COMMANDS | {"tools.analyze_prompts", "analysis.common"} <= set(graph)
    assert find_cycle(graph) is None


def test_the_shared_helpers_import_no_command_and_commands_import_no_other_command():
    graph = tool_graph()
    assert not graph["analysis.common"] & (COMMANDS | {"tools.analyze_prompts"})
    for command in COMMANDS:
        assert not graph[command] & ((COMMANDS - {command}) | {"tools.analyze_prompts"}), command


def test_the_dispatcher_only_imports_the_commands():
    assert tool_graph()["tools.analyze_prompts"] <= COMMANDS | {"analysis"}


@pytest.mark.parametrize("name", sorted(tool_modules()))
def test_no_tool_imports_train(name):
    names = imported_names(tool_modules()[name])
    assert not {"train", "train.py"} & {imported.split(".")[0] for imported in names}


@pytest.mark.parametrize("path", sorted(ANALYSIS.glob("*.py"))
                         + [TOOLS / "analyze_prompts.py", REPO / "study" / "config.py"],
                         ids=lambda path: str(path.relative_to(REPO)))
def test_the_analysis_modules_stay_small(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES
