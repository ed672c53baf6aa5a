"""Read the README's fenced code blocks, so tests can run exactly what it shows."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)


def blocks(lang: str) -> list[str]:
    return [body for tag, body in FENCE.findall(README.read_text(encoding="utf-8")) if tag == lang]


def commands(block: str) -> list[str]:
    """Shell lines of a block, continuation lines joined, comments and blanks dropped."""
    out, cur = [], ""
    for line in block.splitlines():
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        line = cur + line
        cur = ""
        if line.strip() and not line.lstrip().startswith("#"):
            out.append(line.strip())
    return out
