"""The layering the README promises, checked on the source: a new import that breaks it fails here.

Each module may import (at run time, lazily or not) only modules of a lower layer;
``if TYPE_CHECKING:`` imports are for annotations and do not count.  Only the CLI
imports click and rich, only the download layer imports requests, and the
library never prints.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "densezoo"

LAYERS = [
    {"errors"},
    {"urls", "hashing", "progress", "content", "pickle_scan", "disk", "units"},
    {"layout", "manifest_edit", "settings"},
    {"manifest"},
    {"catalog", "store", "health", "extract"},
    {"configs"},
    {"trust", "download", "download.http", "download.transfer", "download.segmented", "s3",
     "mirror_page"},
    {"results", "intake"},
    {"verifier"},
    {"fetcher"},
    {"pins", "export", "cache", "doctor", "config_resolve"},
    {"mirror"},
    {"bundle"},
    {"api"},
    {"iopath"},
    {"integrations", "integrations.detectron2"},
    {"cli", "cli.app", "cli.render", "cli.browse", "cli.check", "cli.cache", "cli.share",
     "cli.setup", "cli.configs"},
]
LEVEL = {m: i for i, layer in enumerate(LAYERS) for m in layer}
# Within a package, its parts may import each other in this order.
SAME_LAYER_OK = {("download", "download.http"), ("download", "download.transfer"),
                 ("download.http", "download.transfer"), ("download.segmented", "download.http"),
                 ("download.segmented", "download.transfer"),
                 ("download.http", "download.segmented")}     # lazily: a split download


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts)


def _runtime_imports(path: Path, name: str) -> set[str]:
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
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
                 if p.name not in ("__main__.py",) and _module_name(p))


@pytest.mark.parametrize("path,name", MODULES, ids=[n for _, n in MODULES])
def test_imports_only_go_down(path, name):
    assert name in LEVEL, f"{name} is not placed in a layer (add it to LAYERS)"
    for dep in _runtime_imports(path, name):
        if dep.startswith("!"):
            third = dep[1:]
            if third == "requests" or third == "urllib3":
                assert name.startswith("download"), f"{name} imports {third}"
            if third in ("boto3", "botocore"):
                assert name == "s3", f"{name} imports {third}"
            if third == "iopath":
                assert name in ("iopath", "integrations.detectron2"), f"{name} imports iopath"
            if third in ("click", "rich"):
                assert name.startswith("cli"), f"{name} imports {third}"
            continue
        if dep == "" or dep not in LEVEL:       # the package root (__version__)
            continue
        ok = LEVEL[dep] < LEVEL[name] or (name, dep) in SAME_LAYER_OK or (
            name.startswith("cli") and dep.startswith("cli"))
        assert ok, f"{name} (layer {LEVEL[name]}) imports {dep} (layer {LEVEL[dep]})"


@pytest.mark.parametrize("path,name", [m for m in MODULES if not m[1].startswith("cli")],
                         ids=[n for _, n in MODULES if not n.startswith("cli")])
def test_the_library_never_prints(path, name):
    tree = ast.parse(path.read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Name) and n.func.id == "print"]
    assert not calls, f"{name} calls print()"
