"""Turn a RunFile into the browser's analysis summary text and level table.

The analysis itself is `labspin.analysis.analyze_run`; this only formats its result.
"""
from __future__ import annotations

from labspin.errors import UserError
from labspin.formatting import quantity


def _si(v, unit: str = "Ω") -> str:
    return quantity(v, unit)


def analyse(run) -> tuple[str, object | None]:
    """(summary text, LevelTable or None) for a RunFile; a run without states gives no table."""
    from labspin.analysis import analyze_run
    if len(run.data) == 0:
        return "No points yet.", None
    a = analyze_run(run)
    lines = [a.progress, f"protocol: {a.protocol_name} ({a.kind}); states from: {a.state_source}"]
    if not a.states.empty:
        ctc = "—" if a.ctc is None else f"{100 * a.ctc:.2f} %"
        lines += [f"states measured: {len(a.states)}",
                  f"CTC ({a.ctc_definition}): {ctc}" + (f"  [{a.ctc_note}]" if a.ctc_note else ""),
                  f"distinguishable states (k = {a.k:g}): {a.distinguishable}"]
    w = a.window or {}
    if w:
        lines.append(f"window: R_min {_si(w.get('r_min'))}, R_max {_si(w.get('r_max'))}, "
                     f"ΔR {_si(w.get('window'))}")
    if a.loop:
        lines.append("switching currents: " + ", ".join(
            f"{k} {v.get('mean', float('nan')):.4g} ± {v.get('std', float('nan')):.2g} A"
            for k, v in a.loop.items() if isinstance(v, dict) and "mean" in v))
    if a.potdep:
        for k in ("nonlinearity", "asymmetry"):
            if k in a.potdep:
                lines.append(f"{k}: {a.potdep[k]}")
    table = None
    if not a.states.empty:
        try:
            table = a.level_table()
        except UserError as exc:
            lines.append(f"level table: {exc}")
    return "\n".join(lines), table
