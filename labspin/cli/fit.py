"""`labspin fit`: fit a simulated device to measured runs and write a device file."""
from __future__ import annotations


import click

from labspin.errors import UserError


@click.command("fit")
@click.argument("runs", nargs=-1, required=True)
@click.option("-o", "--output", "output", required=True, help="Device file to write (TOML, labspin-device/1).")
@click.option("--plot", "plot", default=None, help="PNG overlaying measured and simulated loops.")
@click.option("--tau0", "tau0", type=float, default=1e-9, show_default=True, help="Attempt time τ0 (s).")
@click.option("--fit-tau0", is_flag=True, help="Fit τ0 too (needs loops at 3+ widths).")
@click.option("--delta", "delta", type=float, default=None,
              help="Fix Δ instead of fitting it (needed with loops at a single width).")
@click.option("--width", "width", default=None, help="Channel width, e.g. 10um (default: the run's sample).")
@click.option("--thickness", "thickness", default=None, help="Current-carrying layer thickness, e.g. 6nm.")
@click.option("--seed", "seed", type=int, default=0, show_default=True, help="Seed of the refit simulation.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
def fit(runs: tuple[str, ...], output: str, plot: str | None, tau0: float, fit_tau0: bool,
        delta: float | None, width: str | None, thickness: str | None, seed: int,
        overwrite: bool) -> None:
    """Fit the device model to measured loops (and staircase/potdep runs): parameters with
    uncertainties, measured vs refit-simulated figures, a device file for --sim FILE[:SEED]."""
    from labspin import analysis, fit as fitting
    from labspin.cli.analyze import expand_runs
    from labspin.device_file import load_device, save_device
    from labspin.importer import parse_quantity

    from labspin.outputs import check_output_file

    for path, suffix in ((output, ".toml"), (plot, ".png")):
        if path is not None:
            check_output_file(path, overwrite=overwrite, suffix=suffix)
    if not tau0 > 0:
        raise UserError(f"--tau0: must be > 0 s, got {tau0!r}")
    if delta is not None and not delta > 0:
        raise UserError(f"--delta: must be > 0, got {delta!r}")
    w = parse_quantity(width, "m", "--width") if width else None
    t = parse_quantity(thickness, "m", "--thickness") if thickness else None
    analyses = analysis.analyze_runs(expand_runs(runs))
    result = fitting.fit_loops(analyses, tau0=tau0, fit_tau0=fit_tau0, delta=delta)
    device, fit_doc, _ = fitting.device_table(result, width=w, thickness=t)
    result.ctc = fitting.fit_ctc(analyses, result, _params(device), seed=seed)
    if result.ctc:
        device, fit_doc, _ = fitting.device_table(result, width=w, thickness=t)
    header = (f"labspin fit of {', '.join(runs)}\n"
              "[device]: DeviceParams names (docs/physics.md); --sim THIS.toml[:SEED] or "
              "labspin sim loop --device THIS.toml\n"
              "I_c0 and delta are effective values at the measured widths (heating included), "
              "hence thermal_resistance = 0")
    save_device(output, device, fit_doc, overwrite=overwrite, header=header)
    params, notes = load_device(output)          # what the simulator will run
    table, sim = fitting.compare(result, params, seed=seed)
    click.echo(fitting.format_result(result, device, table))
    for note in notes + fit_doc["notes"][len(result.notes):]:
        click.echo(f"note: {note}")
    click.echo(f"wrote {output}")
    if plot:
        fitting.plot_overlay(result, sim, plot)
        click.echo(f"plot: {plot}")


def _params(device: dict):
    from labspin.device_file import params_from_table
    return params_from_table(dict(device), "fit")[0]
