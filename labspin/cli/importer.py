"""`labspin import`: CSV/TSV/PyMeasure files from another tool become labspin run files."""
from __future__ import annotations

import click

from labspin.errors import UserError


@click.command("import")
@click.argument("files", nargs=-1, required=True)
@click.option("-o", "--output", "output", required=True,
              help="Run file (.h5); with --each, an existing folder (one run file per input).")
@click.option("--column", "columns", multiple=True, metavar="TARGET=COLUMN[:UNIT]",
              help="Map a file column (header name, or index counted from 0) to a run column "
                   "(pulse_current, pulse_width, read_current, hall_voltage, time, cycle, step) or "
                   "to the signal (hall_resistance, resistance, conductance, current), with its unit, "
                   "e.g. pulse_current=\"Current(mA)\":mA. Unmapped columns are found by name.")
@click.option("--mapping", "mapping", default=None, type=click.Path(dir_okay=False),
              help="TOML mapping file ([columns], [constants], [sample], kind, delimiter, header).")
@click.option("--const", "consts", multiple=True, metavar="TARGET=VALUE",
              help="A run column that the file does not hold, e.g. pulse_width=10ms.")
@click.option("--sample", "sample", multiple=True, metavar="KEY=VALUE",
              help="Sample metadata: id=D7, type=tilted, width=10um, thickness=6nm (SI stored).")
@click.option("--kind", "kind", type=click.Choice(["loop", "staircase", "potdep", "levels"]),
              default=None, help="Protocol kind of the data (default: inferred, and said so).")
@click.option("--read-voltage", "read_voltage", default=None,
              help="Read voltage of a current/conductance signal, e.g. 0.1V (metadata).")
@click.option("--header/--no-header", "header", default=None,
              help="Whether the first row names the columns (default: detected).")
@click.option("--delimiter", "delimiter", default=None, help="Cell separator (default: detected).")
@click.option("--each", is_flag=True, help="One run file per input file instead of one run with a cycle per file.")
@click.option("--overwrite", is_flag=True, help="Replace existing run files.")
def import_(files: tuple[str, ...], output: str, columns: tuple[str, ...], mapping: str | None,
            consts: tuple[str, ...], sample: tuple[str, ...], kind: str | None,
            read_voltage: str | None, header: bool | None, delimiter: str | None, each: bool,
            overwrite: bool) -> None:
    """Import measured data (CSV/TSV, PyMeasure Results) into labspin run files."""
    from labspin import importer

    cols = [importer.parse_column(c) for c in columns]
    constants: dict[str, str] = {}
    sample_meta: dict = {}
    kind_from = "--kind"
    if mapping:
        doc = importer.load_mapping(mapping)
        given = {c.target for c in cols}
        cols += [c for c in doc["columns"] if c.target not in given]
        constants.update({k: str(v) for k, v in (doc.get("constants") or {}).items()})
        sample_meta.update(doc.get("sample") or {})
        if kind is None and doc.get("kind"):
            kind, kind_from = str(doc["kind"]), f"{mapping}: kind"
        if delimiter is None and doc.get("delimiter"):
            delimiter = str(doc["delimiter"])
        if header is None and "header" in doc:
            header = bool(doc["header"])
        if read_voltage is None and doc.get("read_voltage"):
            read_voltage = str(doc["read_voltage"])
    for c in consts:
        key, eq, value = c.partition("=")
        if not eq or not value.strip():
            raise UserError(f"--const {c!r}: expected TARGET=VALUE")
        constants[key.strip()] = value.strip()
    for s in sample:
        key, eq, value = s.partition("=")
        key = key.strip()
        if not eq or not key:
            raise UserError(f"--sample {s!r}: expected KEY=VALUE")
        if key in ("width", "thickness", "length"):
            sample_meta[key] = importer.parse_quantity(value, "m", f"--sample {key}")
        elif key == "r_xx":
            sample_meta[key] = importer.parse_quantity(value, "ohm", f"--sample {key}")
        else:
            sample_meta[key] = value
    if delimiter == "\\t":
        delimiter = "\t"
    text = importer.mapping_as_toml(cols, constants, kind)
    res = importer.import_files(files, output, columns=cols, constants=constants, kind=kind,
                                kind_from=kind_from, sample=sample_meta, each=each, header=header,
                                delimiter=delimiter, read_voltage=read_voltage,
                                overwrite=overwrite, mapping_text=text)
    for note in res.notes:
        click.echo(note)
    click.echo(f"kind: {res.kind} ({res.kind_note})")
    click.echo(f"signal: {res.quantity} [{res.unit}]")
    for out in res.outputs:
        click.echo(f"wrote {out}")
    click.echo(f"{res.rows} points from {len(files)} file(s)"
               + ("" if each or len(files) == 1 else " (one or more cycles per file)"))
