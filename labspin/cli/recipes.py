"""`labspin recipes [NAME]`: the shipped recipes, and one recipe's parameters with units, defaults, limits."""
from __future__ import annotations

import sys
from dataclasses import MISSING, fields

import click


def _value(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, (list, tuple)):
        shown = ", ".join(f"{x:g}" for x in v[:3])
        return f"[{shown}{', ...' if len(v) > 3 else ''}] ({len(v)} values)"
    return f"{v:g}" if isinstance(v, float) else str(v)


def parameter_table(recipe) -> list[dict]:
    """One row per parameter of the recipe's kind: name, value in the recipe, unit, default, limit, doc."""
    cls = type(recipe.protocol)
    given = recipe.protocol.parameters()
    rows = []
    for f in fields(cls):
        meta = f.metadata
        if "kind" not in meta:
            continue
        check = meta.get("check")
        limit = getattr(check, "limit", check.__name__ if check else "")
        if limit and meta["kind"] == "floats":
            limit += " each"
        if f.default is MISSING:
            default = "required"
        elif f.default is None:
            default = "optional"
        else:
            default = _value(f.default)
        rows.append({"parameter": f.name, "value": _value(given.get(f.name)), "unit": meta.get("unit") or "-",
                     "type": {"floats": "list of numbers", "int": "integer"}.get(meta["kind"], "number"),
                     "default": default, "limit": limit or "-", "doc": meta.get("doc", "")})
    return rows


@click.command("recipes")
@click.argument("name", required=False, metavar="[NAME]")
def recipes(name: str | None) -> int:
    """List the shipped recipes; with NAME (a shipped name or a recipe file) show its parameters.

    \b
      labspin recipes
      labspin recipes staircase
      labspin run staircase --sim tilted:1 -o run.h5 --set cycles=20 --set pulse_width=50e-6

    Values are SI (A, s). Write your own: docs/recipes.md.
    """
    from labspin.protocols.recipe import PROTOCOLS, load_recipe, shipped_recipes

    if name is None:
        click.echo("shipped recipes (labspin recipes NAME shows the parameters):")
        for n in shipped_recipes():
            r = load_recipe(n)
            click.echo(f"  {n:<24} {r.kind:<10} {r.description}")
        click.echo(f"protocol kinds: {', '.join(PROTOCOLS)}; a recipe file path works wherever a "
                   "name does; how to write one: docs/recipes.md")
        return 0
    r = load_recipe(name)
    click.echo(f"{r.name} (kind {r.kind}): {r.description}".rstrip(": "))
    click.echo(f"file: {r.path}")
    rows = parameter_table(r)
    cols = ("parameter", "value", "unit", "type", "default", "limit")
    width = {c: max(len(c), *(len(row[c]) for row in rows)) for c in cols}
    click.echo("  ".join(c.ljust(width[c]) for c in cols).rstrip())
    for row in rows:
        line = "  ".join(row[c].ljust(width[c]) for c in cols).rstrip()
        click.echo(line + (f"   # {row['doc']}" if row["doc"] else ""))
    doc = (sys.modules[type(r.protocol).__module__].__doc__ or "").strip()
    if doc:
        click.echo(f"\nkind {r.kind}:\n" + "\n".join("  " + ln for ln in doc.splitlines()).rstrip())
    click.echo("\nChange one with --set KEY=VALUE (SI units). Currents and widths are also checked "
               "against the station's limits: labspin dry-run NAME --sim DEVICE or --station FILE.")
    return 0
