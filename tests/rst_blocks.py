"""The code blocks of the README and the Sphinx pages, read from the RST source.

The rule: a block is Python when it is a ``.. code-block:: python`` (or ``code``,
``sourcecode``; ``python3``) directive. Literal blocks (``::``) and blocks in other
languages (``console``, ``bash``) are never run; :func:`python_in_literal_blocks` finds
literal blocks that parse as Python with a call or an import in them, which must be
marked ``.. code-block:: python`` instead.

An RST comment right before a block (blank lines between are allowed) says how it runs:

``.. not-run: <reason>``
    the block is not run here (a cluster address, a GPU); the reason is required.
``.. runs-with: <setting>``
    the stand-ins the block's names are bound to; the setting holds for the blocks after it
    in the same file until another marker (a file starts with ``torch``). ``keras`` blocks
    run in the Keras suite, once per backend.

Both comments are invisible in the rendered pages and visible in the source.
"""

from __future__ import annotations

import ast
import re
import types
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.rst",
             *sorted(p for p in (ROOT / "docs").rglob("*.rst") if "_build" not in p.parts)]

_DIRECTIVE = re.compile(r"^(\s*)\.\. (?:code-block|code|sourcecode)::\s*(\S+)?\s*$")
_MARKER = re.compile(r"^\s*\.\. (not-run|runs-with):\s*(.*?)\s*$")
_PYTHON = {"python", "python3", "py"}


@dataclass(frozen=True)
class Block:
    """One code block: where it is, its text, and how it runs."""

    path: Path
    line: int  # 1-based line of the block's first code line
    code: str
    language: str
    not_run: str | None = None  # the reason, when marked
    runs_with: str | None = None  # None: the setting of the block before holds

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def is_python(self) -> bool:
        return self.language in _PYTHON

    def compiled(self) -> types.CodeType:
        """The block compiled so that tracebacks give the RST file and its line numbers."""
        source = "\n" * (self.line - 1) + self.code
        return compile(source, str(self.path.relative_to(ROOT)), "exec")


def _body(lines: list[str], start: int, indent: int) -> tuple[int, list[str]]:
    """The indented body that follows line ``start`` (options skipped), and its first line."""
    i = start + 1
    while i < len(lines) and re.match(r"^\s+:\w[\w-]*:", lines[i]):  # directive options
        i += 1
    body: list[str] = []
    first = -1
    while i < len(lines):
        text = lines[i]
        if text.strip() and len(text) - len(text.lstrip()) <= indent:
            break
        if text.strip() and first < 0:
            first = i
        if first >= 0:
            body.append(text)
        i += 1
    while body and not body[-1].strip():
        body.pop()
    margin = min((len(t) - len(t.lstrip()) for t in body if t.strip()), default=0)
    return first + 1, [t[margin:] for t in body]


def _marker(lines: list[str], start: int) -> tuple[str | None, str | None]:
    """The ``not-run`` reason and ``runs-with`` setting given right above line ``start``."""
    not_run, runs_with = None, None
    i = start - 1
    while i >= 0 and not lines[i].strip():
        i -= 1
    while i >= 0 and (m := _MARKER.match(lines[i])):
        if m.group(1) == "not-run":
            not_run = m.group(2)
            if not not_run:
                raise ValueError(f"line {i + 1}: '.. not-run:' needs a reason")
        else:
            runs_with = m.group(2)
        i -= 1
    return not_run, runs_with


def code_blocks(path: Path) -> list[Block]:
    """Every ``code-block`` directive of an RST file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    for i, text in enumerate(lines):
        m = _DIRECTIVE.match(text)
        if not m:
            continue
        line, body = _body(lines, i, len(m.group(1)))
        not_run, runs_with = _marker(lines, i)
        blocks.append(Block(path, line, "\n".join(body) + "\n", (m.group(2) or "").lower(),
                            not_run, runs_with))
    return blocks


def literal_blocks(path: Path) -> list[tuple[int, str]]:
    """``::`` literal blocks as (line, text)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for i, text in enumerate(lines):
        if text.rstrip().endswith("::") and not text.lstrip().startswith(".. "):
            indent = len(text) - len(text.lstrip())
            line, body = _body(lines, i, indent)
            if body:
                found.append((line, "\n".join(body)))
    return found


def python_in_literal_blocks(path: Path) -> list[int]:
    """Lines of literal blocks that read as Python code (a call or an import)."""
    bad = []
    for line, text in literal_blocks(path):
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        if any(isinstance(n, (ast.Call, ast.Import, ast.ImportFrom)) for n in ast.walk(tree)):
            bad.append(line)
    return bad


def python_blocks(path: Path) -> list[tuple[Block, str]]:
    """The Python blocks of a file with the setting each runs with (markers hold until changed)."""
    found, setting = [], "torch"
    for block in code_blocks(path):
        if block.is_python:
            setting = block.runs_with or setting
            found.append((block, setting))
    return found
