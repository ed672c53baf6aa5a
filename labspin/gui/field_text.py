"""The text of a parameter field: what the user types is read like `labspin run --set`, and a
value is written so that it reads back the same."""
from __future__ import annotations

import json


def parse_value(text: str):
    """Field text -> value the way `labspin run --set` reads it; empty = not set (the default)."""
    from labspin.protocols.recipe import parse_value as parse_set
    t = text.strip()
    return parse_set(t) if t else None


def show_value(v) -> str:
    """A parameter value as field text that `parse_value` reads back to the same value."""
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:g}" if float(f"{v:g}") == v else repr(v)
    return json.dumps(v)
