"""The window's dry-run panel: `labspin.dryrun.dry_run` decides, this module only formats."""
from __future__ import annotations

import html

from labspin.errors import UserError


def describe(recipe, spec) -> tuple[str, str | None, dict[str, str]]:
    """(summary HTML, reason the run may not start or None, {parameter: violation message})."""
    from labspin.dryrun import dry_run
    from labspin.formatting import duration, si
    try:
        s = dry_run(recipe, spec)
    except UserError as exc:
        return f"<span style='color:#b00020'>{html.escape(str(exc))}</span>", str(exc), {}
    lim = s.limits
    rows = [
        ("points / pulses", f"{s.points} reads, {s.pulses} pulses, {s.cycles} cycle(s)"),
        ("peak pulse current", f"{si(s.peak_current, 'A')} (limit {si(lim['max_pulse_current'], 'A')})"),
        ("peak current density", "n/a" if s.peak_current_density is None
         else f"{s.peak_current_density:.3g} A/m²"),
        ("peak voltage I·R_xx", "n/a" if s.peak_voltage is None
         else f"{si(s.peak_voltage, 'V')} (compliance {si(lim['compliance_voltage'], 'V')})"),
        ("Hall reads", s.hall_mode),
        ("duration (estimate)", duration(s.duration)),
    ]
    body = "".join(f"<tr><td>{k}</td><td>&nbsp;<b>{html.escape(v)}</b></td></tr>" for k, v in rows)
    fields: dict[str, str] = {}
    if s.ok:
        verdict = "<span style='color:#1b7f3b'><b>within station limits</b></span>"
        problem = None
    else:
        msgs = [v.describe() for v in s.violations]
        for v, m in zip(s.violations, msgs):
            fields.setdefault(v.parameter.split("[")[0], m)
        verdict = ("<span style='color:#b00020'><b>outside station limits:</b><br>"
                   + "<br>".join(html.escape(m) for m in msgs) + "</span>")
        problem = f"out of station limits: {msgs[0]}"
    return f"<table>{body}</table>{verdict}", problem, fields
