"""The layering the README promises, checked on the source: a new import that breaks it fails here.

Each module may import (at run time, lazily or not) only modules of its own wing or a
lower one; no module reaches itself through imports (annotation-only imports included);
no operation imports the facade.  Only the CLI
imports click and rich, only the download layer imports requests, and the
library never prints.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "densezoo"

# The house from the bottom up: base, content (what bytes are), manifest (what artifacts
# are), the two wings that stand on them (download: transport; store: what is local and
# whether it is right), the core, the operations, the facade, and the faces.
WINGS = [
    ("base", {"errors", "version", "urls", "sources", "hashing", "progress", "disk", "units", "settings",
              "printable",
              "user_settings", "manifest_edit"}),
    ("content", {"content"}),
    ("manifest", {"manifest", "compiled", "catalog", "configs", "results", "events"}),
    ("download", {"download"}),
    ("store", {"store"}),
    ("core", {"fetcher", "core"}),
    ("ops", {"ops"}),
    ("api", {"api"}),
    ("faces", {"iopath", "integrations", "cli", "run", ""}),
]


def wing_of(module: str) -> int:
    top = module.split(".")[0]
    for i, (_, members) in enumerate(WINGS):
        if module in members or top in members:
            return i
    raise AssertionError(f"{module} is not placed in a wing (add it to WINGS)")


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts)


def _runtime_imports(path: Path, name: str, annotations: bool = False) -> set[str]:
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if not annotations and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            mod = ".".join([*base, node.module] if node.module else base)
            if not node.module:
                found.update(f"{mod}.{a.name}".strip(".") for a in node.names)
            else:
                found.add(mod)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add("!" + node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found.update("!" + a.name.split(".")[0] for a in node.names)
    return found


MODULES = sorted((p, _module_name(p)) for p in SRC.rglob("*.py")
                 if p.name not in ("__main__.py",))
GRAPH = {name: {d for d in _runtime_imports(p, name) if not d.startswith("!")}
         for p, name in MODULES}


def _known(dep: str) -> str | None:
    """The module an import names (``from .x import y`` may name a submodule ``x.y``)."""
    while dep and dep not in GRAPH:
        dep = dep.rpartition(".")[0]
    return dep if dep in GRAPH else None


@pytest.mark.parametrize("path,name", MODULES, ids=[n or "densezoo" for _, n in MODULES])
def test_imports_only_go_down(path, name):
    """Into a lower wing, or within the wing (where the circle test keeps it acyclic)."""
    mine = wing_of(name)
    for dep in _runtime_imports(path, name):
        if dep.startswith("!"):
            third = dep[1:]
            if third == "requests" or third == "urllib3":
                assert name.startswith("download."), f"{name} imports {third}"
            if third in ("boto3", "botocore"):
                assert name == "download.s3", f"{name} imports {third}"
            if third == "iopath":
                assert name in ("iopath", "integrations.detectron2"), f"{name} imports iopath"
            if third in ("click", "rich"):
                assert name.startswith("cli"), f"{name} imports {third}"
            continue
        target = _known(dep)
        if target is None or target == name:
            continue
        assert wing_of(target) <= mine, (
            f"{name} ({WINGS[mine][0]}) imports {target} ({WINGS[wing_of(target)][0]}), "
            "a wing above it")


def test_no_import_circles():
    """No module reaches itself through imports, ``TYPE_CHECKING`` ones included."""
    full = {name: {t for d in _runtime_imports(p, name, annotations=True)
                   if not d.startswith("!") and (t := _known(d)) and t != name}
            for p, name in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for d in full[n]:
            if state.get(d) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[n] = 2

    for n in full:
        if n not in state:
            visit(n)


def test_operations_never_import_the_facade():
    for p, name in MODULES:
        if name.startswith(("ops.", "core", "fetcher", "store.", "download.", "content.")):
            deps = {_known(d) for d in _runtime_imports(p, name, annotations=True)}
            assert "api" not in deps, f"{name} imports api"


@pytest.mark.parametrize("path,name", [m for m in MODULES if not m[1].startswith("cli")],
                         ids=[n for _, n in MODULES if not n.startswith("cli")])
def test_the_library_never_prints(path, name):
    tree = ast.parse(path.read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Name) and n.func.id == "print"]
    assert not calls, f"{name} calls print()"
