"""``python -m proxy.codegen --coverage``: a Markdown table of typed coverage per API group.

Per group: operations, how many have a request / response / stream / form type in the generated
route table, how many declare a binary or text success response (`Route.kind`), structs and
union aliases in its module, and how many corpus exchanges call it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from proxy.codegen.bodies import route_row
from proxy.codegen.generate import Output
from proxy.codegen.groups import module_of_path
from proxy.codegen.loader import Spec
from proxy.media import route_kind


def _template_regex(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")


def corpus_calls(corpus_dir: Path) -> list[tuple[str, str]]:
    """(method, path below /v1) of every recorded exchange in ``corpus_dir/*.jsonl``."""
    calls: list[tuple[str, str]] = []
    for path in sorted(corpus_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                request = json.loads(line)["request"]
                calls.append((request["method"], request["path"].removeprefix("/v1")))
    return calls


def coverage_table(spec: Spec, output: Output, calls: Sequence[tuple[str, str]]) -> str:
    """The Markdown table (one row per module, then a total row)."""
    plan = output.plan
    rows: dict[str, list[int]] = {}
    templates: list[tuple[str, re.Pattern[str], str, int]] = []
    for op in spec.operations():
        row = route_row(spec, op)
        module = module_of_path(op.path)
        counts = rows.setdefault(module, [0, 0, 0, 0, 0, 0, 0])
        counts[0] += 1
        typed = [
            plan.lookup_schema(s) is not None if s else False for s in (row.request, row.response)
        ]
        stream = row.events is not None or (
            row.stream is not None and plan.lookup_schema(row.stream) is not None
        )
        counts[1] += typed[0]
        counts[2] += typed[1]
        counts[3] += stream
        counts[4] += row.form is not None and plan.lookup_schema(row.form) is not None
        counts[5] += route_kind(row.media) in ("binary", "text")
        template = op.path.split("?")[0]
        literal = sum(not part.startswith("{") for part in template.split("/"))
        templates.append((op.method, _template_regex(template), module, literal))
    templates.sort(key=lambda t: -t[3])  # literal segments first, as the route table does
    for method, path in calls:
        for t_method, regex, module, _ in templates:
            if t_method == method and regex.match(path):
                rows[module][6] += 1
                break
    lines = [
        "| group | operations | request types | response types | stream types | form types "
        "| binary / text responses | structs | unions | corpus exchanges |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    total = [0] * 9
    for module in sorted(rows):
        counts = rows[module]
        stats = output.stats.get(module)
        structs, aliases = (stats.structs, stats.aliases) if stats else (0, 0)
        values = [*counts[:6], structs, aliases, counts[6]]
        total = [a + b for a, b in zip(total, values, strict=True)]
        lines.append(f"| `{module}` | " + " | ".join(str(v) for v in values) + " |")
    for module in ("errors", "_shared"):
        stats = output.stats.get(module)
        if stats:
            total[6] += stats.structs
            total[7] += stats.aliases
            lines.append(f"| `{module}` | | | | | | | {stats.structs} | {stats.aliases} | |")
    lines.append("| **total** | " + " | ".join(f"**{v}**" for v in total) + " |")
    return "\n".join(lines) + "\n"
