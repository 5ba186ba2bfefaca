"""DESIGN.md section 7 and issue 17: modules under ~600 lines, functions under ~60 lines.

A module of autolog/, integrations/ or store/ above ``MAX_MODULE_LINES`` needs its reason in
its docstring, as a sentence naming its size ("About 700 lines: one grammar whose parts change
together"); a function or method above ``MAX_FUNCTION_LINES`` (from its ``def`` line to its
end, docstring included, decorators such as a CLI command's options not) has no such way out:
split it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("autolog", "integrations", "store")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60
# "About 670 lines: ..." / "Over 600 lines because ...": the size named, then the reason.
REASON = re.compile(r"\b(?:about|over|nearly|some)\s+[\d,]+\s+lines\b\W+\w", re.IGNORECASE)


def offenders(root: Path = ROOT) -> list[str]:
    """Every module over the line limit without a reason, and every function over its limit."""
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root)
            source = path.read_text(encoding="utf-8")
            tree = ast.parse(source, str(rel))
            lines = len(source.splitlines())
            doc = ast.get_docstring(tree) or ""
            if lines > MAX_MODULE_LINES and not REASON.search(doc):
                found.append(f"{rel}: {lines} lines and no reason in its docstring")
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    span = (node.end_lineno or node.lineno) - node.lineno + 1
                    if span > MAX_FUNCTION_LINES:
                        found.append(f"{rel}:{node.lineno} {node.name}() is {span} lines")
    return found


def test_no_module_or_function_over_its_limit() -> None:
    assert offenders() == []


@pytest.mark.parametrize(
    ("doc", "lines", "flagged"),
    [
        ("A store.", 601, True),
        ("A store.\n\nAbout 640 lines: one transaction discipline.", 640, False),
        ("A store of 640 lines.", 640, True),  # a size without a reason is not one
        ("A store.", 600, False),
    ],
)
def test_the_checker_flags_long_modules_without_a_reason(
    tmp_path: Path, doc: str, lines: int, flagged: bool
) -> None:
    body = f'"""{doc}"""\n' + "x = 1\n" * (lines - len(doc.splitlines()))
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "big.py").write_text(body)
    for package in PACKAGES[:2]:
        (tmp_path / package).mkdir()
    assert len(body.splitlines()) == lines
    assert bool(offenders(tmp_path)) is flagged


def test_the_checker_flags_long_functions(tmp_path: Path) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
    short = "def short():\n" + "    x = 1\n" * 59
    long = "@staticmethod\ndef long():\n" + "    x = 1\n" * 60
    (tmp_path / "autolog" / "mod.py").write_text(short + "\n\n" + long)
    assert offenders(tmp_path) == ["autolog/mod.py:64 long() is 61 lines"]
