"""The code's shape, checked on its source: imports point inward only (docs/architecture.md),
and nothing outside the core reaches into a core object (a private name, an attribute set
from outside, the trainer or the model driven by hand instead of through LoopCore's calls).
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RINGS = {  # package -> module prefixes it must not import
    "kernels": ("loop",),
    "loop/base": ("loop.store", "loop.faces", "loop.demo", "pygame", "h5py", "argparse"),
    "loop/core": ("loop.store", "loop.faces", "loop.demo", "pygame", "h5py", "argparse"),
    "loop/store": ("loop.faces", "loop.demo", "pygame", "argparse"),
    "loop/demo": ("loop.faces", "loop.store", "pygame", "h5py", "argparse"),
    "loop/safe_files.py": ("loop.core", "loop.base", "loop.store", "loop.faces", "loop.demo"),
}
CORE_OBJECTS = ("core", "trainer", "model", "book")   # what LoopCore holds


def sources(folder: str) -> list[Path]:
    where = ROOT / folder
    return [where] if where.is_file() else sorted(where.rglob("*.py"))


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


@pytest.mark.parametrize("ring", sorted(RINGS))
def test_imports_point_inward(ring):
    wrong = [f"{path.relative_to(ROOT)} imports {name}" for path in sources(ring)
             for name in sorted(imports(path)) if name.startswith(RINGS[ring])]
    assert not wrong, "\n".join(wrong)


def chain(node) -> list[str]:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return parts[::-1]


def reaching_in(path: Path) -> list[str]:
    """Private names used on other objects than self/cls, when this module does not define
    them itself; attributes of core objects set from here; calls on the trainer, the model
    or the labels book."""
    tree = ast.parse(path.read_text())
    own = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    own |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name) and n.value.id in ("self", "cls")}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                and not node.attr.startswith("__") and node.attr not in own \
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            found.append(f"{node.lineno}: private {ast.unparse(node)}")
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
        for target in targets:
            if isinstance(target, ast.Attribute) and set(chain(target)[:-1]) & set(CORE_OBJECTS):
                found.append(f"{node.lineno}: sets {ast.unparse(target)}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            held = chain(node.func)[:-1]
            if held and held[-1] in CORE_OBJECTS[1:]:
                found.append(f"{node.lineno}: calls {ast.unparse(node.func)}")
    return found


@pytest.mark.parametrize("ring", ["loop/faces", "loop/store", "loop/demo"])
def test_nothing_outside_the_core_reaches_into_it(ring):
    wrong = [f"{path.relative_to(ROOT)}:{line}" for path in sources(ring)
             for line in reaching_in(path)]
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_what_it_looks_for(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("core._recent.clear()\ncore.trainer.update(flips=True)\n"
                   "core.augment_ranges = 1\nfrom loop.faces import live\n")
    assert len(reaching_in(bad)) == 3
    assert "loop.faces" in imports(bad)
