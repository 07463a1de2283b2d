"""A rough reader of PromQL for the deploy tests: which metric names, labels and label values an
expression uses, checked against the catalogue. Not a parser (promtool is, see
``check_parses``): it only has to find every ``corral`` name and every label the assets use."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from corral.metrics.catalogue import ALLOWED_LABELS, family_of

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "corral-alerts.yml"

# Labels Prometheus or prometheus-client add to every series (target labels; a histogram's le).
TARGET_LABELS = frozenset({"instance", "job", "le", "pod", "namespace"})

STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
RANGE = re.compile(r"\[[^\]]*\]")
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}")
MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!=|!~|=)\s*"([^"]*)"')
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def names(expr: str) -> set[str]:
    """Metric and recording-rule names in ``expr``: identifiers outside strings and range
    brackets that start with ``corral`` or contain a colon (``queue:corral_x:rate10m``)."""
    bare = RANGE.sub("[]", STRING.sub('""', expr))
    return {t for t in IDENT.findall(bare) if t.startswith("corral") or ":" in t}


def problems(expr: str, recorded: Iterable[str] = ()) -> list[str]:
    """What ``expr`` uses that the catalogue does not define: unknown names, labels a family
    lacks, values outside a label's closed set (``outcome="failed"``)."""
    recorded = set(recorded)
    found: list[str] = []
    for name in sorted(names(expr)):
        if ":" in name:
            if name not in recorded:
                found.append(f"{name}: not a recording rule of {RULES.name}")
        elif family_of(name) is None:
            found.append(f"{name}: not in the catalogue")
    for metric, body in SELECTOR.findall(expr):
        family = family_of(metric)
        if family is None:
            continue
        for label, op, value in MATCHER.findall(body):
            if label not in family.all_labels and label not in TARGET_LABELS:
                found.append(f"{metric}: has no label {label}")
            closed = family.label_values.get(label)
            if closed and op in ("=", "=~"):
                for part in value.split("|") if op == "=~" else [value]:
                    if part not in closed:
                        found.append(f"{metric}: {label}={part!r} is not one of {closed}")
    for group in GROUPING.findall(STRING.sub('""', expr)):
        for label in (part.strip() for part in group.split(",")):
            known = ALLOWED_LABELS | TARGET_LABELS
            # <<.GroupBy>> is prometheus-adapter's template
            if label and not label.startswith("<<") and label not in known:
                found.append(f"grouping by unknown label {label}")
    return found


def recorded_names() -> set[str]:
    return {r["record"] for g in load_rules()["groups"] for r in g["rules"] if "record" in r}


def load_rules() -> dict[str, Any]:
    return yaml.safe_load(RULES.read_text())


def check_parses(promtool: str, exprs: Iterable[str], scratch: Path) -> None:
    """promtool parses every expression (written as recording rules to a scratch file)."""
    rules = [{"record": f"parse:expr_{i}", "expr": e} for i, e in enumerate(exprs)]
    assert rules
    path = scratch / "parse.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "parse", "rules": rules}]}))
    proc = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    return {github_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", markdown, re.M)}
