"""The engine boundary (issue 12): the storage schema stays inside ``corral/engine``.

Nothing outside the engine mentions a job hash's field codes or builds a key name, and the Lua
scripts use only the key suffixes ``keys.py`` builds and the field codes ``schema.py`` decodes.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from corral.engine.keys import FIXED_SUFFIXES, PER_ITEM_SUFFIXES
from corral.engine.schema import JOB_FIELDS, PAYLOAD

SRC = Path(__file__).resolve().parents[2] / "src" / "corral"
LUA = SRC / "engine" / "lua"
STATE_NAMES = {"waiting", "delayed", "active", "completed", "dead", "cancelled"}
LONG_CODES = {code for code in JOB_FIELDS if len(code) > 1}
SHORT_CODES = {code for code in (*JOB_FIELDS, PAYLOAD) if len(code) == 1}
KEY_PARTS = (set(FIXED_SUFFIXES) | set(PER_ITEM_SUFFIXES)) - STATE_NAMES


def _outside_engine() -> list[Path]:
    return [p for p in sorted(SRC.rglob("*.py")) if "engine" not in p.relative_to(SRC).parts]


def _skipped(tree: ast.AST) -> set[int]:
    """Docstrings and f-string format specs (``{x:g}``): text, not data."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            skip.add(id(body[0].value))
        if isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            skip.update(id(n) for n in ast.walk(node.format_spec))
    return skip


def _findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    skip = _skipped(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
            if key in SHORT_CODES or key in LONG_CODES:
                found.append(f"{path.name}:{node.lineno} subscript {key!r}")
        lookup = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        if lookup and node.func.attr in ("get", "hget", "hmget", "hset"):  # type: ignore[attr-defined]
            for arg in node.args:  # type: ignore[attr-defined]
                if isinstance(arg, ast.Constant) and arg.value in SHORT_CODES | LONG_CODES:
                    found.append(f"{path.name}:{node.lineno} call with {arg.value!r}")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and side.value in KEY_PARTS:
                    found.append(f"{path.name}:{node.lineno} key built with {side.value!r}")
        if isinstance(node, ast.Constant) and id(node) not in skip and node.value in LONG_CODES:
            found.append(f"{path.name}:{node.lineno} field code {node.value!r}")
    return found


def test_no_field_code_or_key_name_outside_the_engine() -> None:
    found = [f for path in _outside_engine() for f in _findings(path)]
    assert found == []


def test_the_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    sample = tmp_path / "leaky.py"
    sample.write_text(
        'def f(raw, k):\n    return raw["st"], raw.get("n"), k.base + "gpaused", "cx"\n'
    )
    found = " ".join(_findings(sample))
    for leak in ("subscript 'st'", "call with 'n'", "key built with 'gpaused'", "field code 'cx'"):
        assert leak in found, found


def _lua_sources() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(LUA.glob("*.lua"))}


def test_lua_scripts_use_only_the_key_suffixes_keys_py_builds() -> None:
    known = set(FIXED_SUFFIXES) | set(PER_ITEM_SUFFIXES)
    used: set[str] = set()
    for text in _lua_sources().values():
        used |= set(re.findall(r"base \.\. '([A-Za-z_:]+)'", text))
        # helpers that take a key suffix and join it to base themselves
        used |= set(re.findall(r"(?:present|group_setting|trim)\(base, '([a-z_]+)'", text))
        used |= set(re.findall(r"\{'(g[a-z]+)', ARGV\[\d\]\}", text))  # groups.lua's settings
    assert used, "the patterns found nothing: they no longer match the scripts"
    assert used - known == set()


def test_lua_scripts_use_only_the_field_codes_schema_py_knows() -> None:
    used: set[str] = set()
    for text in _lua_sources().values():
        for call in re.findall(
            r"redis\.call\('H(?:SET|GET|MGET|DEL|EXISTS|INCRBY)', jkey([^)]*)\)", text
        ):
            # the field names are the quoted literals of a job hash call (values are variables)
            used |= set(re.findall(r"'([a-z]{1,2})'", call))
    assert {"st", "tk", "a", "n"} <= used, used  # the patterns still match the scripts
    assert used - {*JOB_FIELDS, PAYLOAD} == set()  # replay clears a payload kept in the hash
