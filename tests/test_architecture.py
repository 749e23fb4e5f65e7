"""The house rule of docs/architecture.md: which package may import which, and no import circles.

Read from the source with ``ast`` (every import, also those inside functions), so a new
``from actions import ...`` in web/ fails here before it reaches a review.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Our top-level packages.
OURS = {"af_core", "actions", "channels", "web", "trainer", "devtools", "scripts",
        "servicenow_emulator", "nlu_components", "tests"}

# package -> the packages (ours, and the Rasa runtime) it must never import.
FORBIDDEN: Dict[str, Set[str]] = {
    # the core: no Rasa, nothing of the dialogue or the servers built on it
    "af_core": {"actions", "channels", "web", "trainer", "devtools", "scripts", "rasa", "rasa_sdk",
                "servicenow_emulator", "nlu_components"},
    # the dialogue: rasa-sdk actions on top of the core
    "actions": {"channels", "web", "trainer", "devtools", "scripts", "rasa"},
    # Rasa's input channels: the core and Rasa, never the actions
    "channels": {"actions", "web", "trainer", "devtools", "rasa_sdk"},
    # the web pages (leader's page, console, workbench): the core and the trainer's package, no Rasa
    "web": {"actions", "channels", "devtools", "rasa", "rasa_sdk"},
    # the trainer's tools: the core; Rasa only in the workbench's child process (trainer/tools.py)
    "trainer": {"actions", "channels", "web"},
    # the ServiceNow emulator stands in for an external system: only the core's settings
    "servicenow_emulator": {"actions", "channels", "web", "trainer", "devtools", "rasa", "rasa_sdk"},
    "nlu_components": {"actions", "channels", "web", "trainer", "devtools", "scripts"},
    # launchers start the processes; they do not reach into the dialogue's code
    "scripts": {"actions", "devtools"},
}

# The one file of trainer/ that may import Rasa (it runs as the workbench's child process).
RASA_ALLOWED = {"trainer/tools.py", "trainer/retrain.py", "trainer/review.py", "trainer/conversations.py"}


def python_files(package: str) -> Iterator[Path]:
    yield from sorted((ROOT / package).rglob("*.py"))


def imports(path: Path) -> Iterator[Tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, id(node) in top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno, id(node) in top
            for alias in node.names:  # "from af_core import settings" imports af_core.settings
                yield f"{node.module}.{alias.name}", node.lineno, id(node) in top


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_every_package_imports_only_what_the_house_rule_allows():
    broken: List[str] = []
    for package, forbidden in FORBIDDEN.items():
        for path in python_files(package):
            rel = path.relative_to(ROOT).as_posix()
            for name, line, _ in imports(path):
                first = name.split(".")[0]
                if first not in forbidden:
                    continue
                if first in ("rasa", "rasa_sdk") and rel in RASA_ALLOWED:
                    continue
                broken.append(f"{rel}:{line} imports {name}")
    assert not broken, "Imports against docs/architecture.md:\n" + "\n".join(sorted(set(broken)))


def test_the_core_runs_without_rasa_installed():
    """The core is importable where Rasa is not (the Python 3.12 app image): nothing in af_core
    names rasa or rasa_sdk, not even lazily (checked above), and nothing imports TensorFlow."""
    for path in python_files("af_core"):
        for name, line, _ in imports(path):
            assert name.split(".")[0] not in {"rasa", "rasa_sdk", "tensorflow", "sanic"}, f"{path}:{line} {name}"


def module_graph() -> Dict[str, Set[str]]:
    """Module-level imports between our own modules (lazy imports inside functions excluded)."""
    modules = {module_name(p): p for pkg in OURS for p in python_files(pkg) if (ROOT / pkg).is_dir()}
    graph: Dict[str, Set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for target, _, at_top in imports(path):
            if at_top and target in modules and target != name:
                graph[name].add(target)
    return graph


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_no_import_circles():
    assert cycles(module_graph()) == []


def test_the_circle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


@pytest.mark.parametrize("package", ["actions", "af_core", "trainer", "web", "channels"])
def test_no_module_near_a_thousand_lines(package):
    long = [f"{p.relative_to(ROOT)}: {n}" for p in python_files(package)
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 800]
    assert not long, long


def test_actions_holds_only_rasa_sdk_code():
    """Every module in actions/ is built on rasa-sdk (an action, or a form's shared validation);
    a helper that needs no Rasa belongs in af_core, where web/ and the trainer can use it too."""
    for path in python_files("actions"):
        if path.name == "__init__.py":
            continue
        names = {name.split(".")[0] for name, _, _ in imports(path)}
        assert "rasa_sdk" in names, f"{path.relative_to(ROOT)} does not use rasa-sdk: move it to af_core/"
