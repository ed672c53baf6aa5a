"""`labspin analyze` (report folder) and `labspin levels` (level table): thin shells over
labspin.analysis / labspin.report / labspin.levels.

Outputs are checked before any run file is read, so a refused command leaves the disk untouched.
"""
from __future__ import annotations

from pathlib import Path

import click

from labspin.errors import UserError
from labspin.outputs import check_output_dir, check_output_file


def _states(value: str) -> str | int:
    """--states: "step" (protocol steps), "auto" (clustering) or a number of states (k-means)."""
    v = value.strip().lower()
    if v in ("step", "auto"):
        return v
    try:
        n = int(v)
    except ValueError:
        raise UserError(f"--states: expected step, auto or a number of states, got {value!r}") from None
    if n < 2:
        raise UserError(f"--states: need at least 2 states, got {n}")
    return n


def _common(f):
    f = click.option("--overwrite", is_flag=True, help="Replace existing outputs.")(f)
    f = click.option("--states", "states", default="step", show_default=True,
                     help="How reads map to states: step (protocol step index), auto (cluster R_H), "
                          "or a number K (cluster R_H into K states).")(f)
    f = click.option("--k", "k", type=float, default=5.0, show_default=True,
                     help="Separation: adjacent states count as distinguishable when ≥ k·(σa+σb)/2 apart.")(f)
    f = click.option("--ctc", "ctc", type=click.Choice(["window", "state"]), default="window",
                     show_default=True,
                     help="CTC definition: window = σ/(R_max−R_min); state = σ/|mean−R_min|.")(f)
    return f


def expand_runs(runs: tuple[str, ...]) -> list[str]:
    """Run paths, with shell-style globs expanded (for shells that do not, and for quoting)."""
    import glob

    out: list[str] = []
    for r in runs:
        if any(ch in r for ch in "*?[") and not Path(r).exists():
            hits = sorted(glob.glob(r))
            if not hits:
                raise UserError(f"{r}: no run file matches")
            out += hits
        else:
            out.append(r)
    return out


@click.command("analyze")
@click.argument("runs", nargs=-1, required=True)
@click.option("-o", "--output", "output", required=True, help="Report folder (created; must be empty).")
@click.option("--pool", is_flag=True, help="Also pool the runs of each device state-wise (one extra analysis per device).")
@click.option("--tau0", "tau0", type=float, default=1e-9, show_default=True,
              help="Attempt time τ0 (s) of the thermal-activation fit I_c = I_c0(1 − ln(t_p/τ0)/Δ).")
@_common
def analyze(runs: tuple[str, ...], output: str, pool: bool, tau0: float, ctc: str, k: float,
            states: str, overwrite: bool) -> None:
    """Analyse run files (paths or globs): states, CTC, window, LTP/LTD, I_c; across runs, I_c±
    vs pulse width with the thermal-activation fit and a device-to-device table; write figures,
    CSVs, report.md, summary.json."""
    from labspin import analysis, report

    check_output_dir(output, overwrite=overwrite)
    if not (tau0 > 0):
        raise UserError(f"--tau0: must be > 0 s, got {tau0!r}")
    runs = tuple(expand_runs(runs))
    st = _states(states)
    analyses = analysis.analyze_runs(runs, ctc_definition=ctc, k=k, states=st)
    if pool:
        groups: dict[str, list[str]] = {}
        for path, a in zip(runs, analyses):
            groups.setdefault(a.device_id, []).append(path)
        analyses += [analysis.pool_runs(paths, ctc_definition=ctc, k=k, states=st)
                     for paths in groups.values() if len(paths) > 1]
    report.write_report(analyses, output, overwrite=overwrite)
    across = analysis.across_runs(analyses, tau0=tau0)
    report.write_across_runs(across, output)
    click.echo(report.format_summary(analyses))
    text = report.format_across_runs(across)
    if text:
        click.echo(text)
    click.echo(f"report: {Path(output) / 'report.md'}")


@click.command("levels")
@click.argument("runs", nargs=-1, required=True)
@click.option("-o", "--output", "output", required=True, help="Level table, labspin-levels/1 JSON.")
@click.option("--csv", "csv_path", default=None, help="Also write a NeuroSim states,mean,std CSV.")
@click.option("--pool-devices", is_flag=True,
              help="Allow pooling runs of different devices into one table (refused by default).")
@click.option("--select", "select", type=click.Choice(["all", "distinguishable"]), default="all",
              show_default=True, help="Export every state, or only the k·σ-separated (distinguishable) ones.")
@_common
def levels(runs: tuple[str, ...], output: str, csv_path: str | None, pool_devices: bool, select: str,
           ctc: str, k: float, states: str, overwrite: bool) -> None:
    """Build a level table (mean, std, n per state, sorted by mean) from one or more runs of a device."""
    from labspin import analysis

    targets = [Path(output)] + ([Path(csv_path)] if csv_path else [])
    if csv_path and Path(csv_path).resolve() == Path(output).resolve():
        raise UserError(f"--csv {csv_path}: same file as -o")
    for t in targets:
        check_output_file(t, overwrite=overwrite)
    st = _states(states)
    runs = tuple(expand_runs(runs))
    if len(runs) == 1:
        a = analysis.analyze_run(runs[0], ctc_definition=ctc, k=k, states=st)
    else:
        a = analysis.pool_runs(runs, ctc_definition=ctc, k=k, states=st, allow_devices=pool_devices)
    from labspin.levels import select_levels
    table = select_levels(a.level_table(), select, k)
    table.validate(str(output))
    table.save_json(output, overwrite=overwrite)
    if csv_path:
        table.save_csv(csv_path, overwrite=overwrite)
    ctc_txt = "n/a" if a.ctc is None else f"{a.ctc * 100:.3g} %"
    signal = "" if a.quantity == "hall_resistance" else f" ({a.quantity} in {a.unit})"
    click.echo(f"{output}: {len(table)} levels{signal} of device {a.device_id}, CTC {ctc_txt} ({ctc}), "
               f"{a.distinguishable} distinguishable at k={k:g}"
               + (f"; exported the {len(table)} distinguishable" if select != "all" else "")
               + ("" if a.status == "completed" else f" [{a.progress}]"))
