"""`labspin check`: pre-flight of a bench, touching no output.

One line per instrument (OK, or what is wrong and how to fix it); exit 0 when all pass, else 2.
"""
from __future__ import annotations

import click


@click.command("check")
@click.option("--station", "station_file", metavar="FILE", help="station TOML file")
@click.option("--sim", metavar="DEVICE[:SEED]", help="the simulated bench (6221 + 2182A)")
@click.option("--bus-log", metavar="FILE", help="write every VISA message to FILE (overwritten)")
def check(station_file: str | None, sim: str | None, bus_log: str | None) -> int:
    """Ask every instrument of a station who it is and whether it is ready: identity, command
    language, sense mode, the 6221→2182A link, compliance, outputs off, error queues empty.

    \b
      labspin check --station docs/station_example.toml
      labspin check --station docs/stations/lockin_sr830.toml
    """
    from labspin.cli.run import _station_spec
    from labspin.station import check_station

    spec = _station_spec(station_file, sim)
    log = None
    if bus_log is not None:
        from labspin.buslog import BusLog
        log = BusLog(bus_log, overwrite=True)
    reports = check_station(spec, bus_log=log)
    for report in reports:
        click.echo(report.line())
    failed = [r.name for r in reports if not r.ok]
    if failed:
        click.echo(f"labspin: error: check failed for {len(failed)} of {len(reports)} instruments "
                   f"({', '.join(failed)}); nothing was sourced", err=True)
        return 2
    return 0
