"""Measured data from other tools into labspin run files (``labspin import``).

A CSV/TSV (with or without a header, a UTF-8 BOM, quoted fields with newlines, ragged rows) or a
PyMeasure ``Results`` CSV (its ``#`` header block of Procedure parameters) is parsed with pandas;
columns are mapped to run columns by name or index with a unit each (pint converts), constant
columns become metadata, and the result is written through the same ``RunWriter`` as a measured
run, so ``info``, ``analyze``, ``levels``, ``fit``, the GUI browser and ``evaluate`` take it.

The signal column keeps its quantity and unit: R_H or R in ohm, a conductance or a read current in
the unit given (``@quantity``/``@units`` on ``/entry/data/hall_resistance``, see labspin.store).
Every problem with a file is one ``UserError`` naming the file, line and column; nothing is written
unless everything parsed (the run file is written to a temporary name and renamed at the end).
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from labspin.errors import FieldError, UserError
from labspin.outputs import check_output_file

KINDS = ("loop", "staircase", "potdep", "levels")
#: run columns a file column can feed, with the SI unit stored in the run file
RUN_TARGETS = {"pulse_current": "A", "pulse_width": "s", "read_current": "A", "hall_voltage": "V",
               "time": "s", "cycle": "1", "step": "1", "pulse_index": "1"}
#: signal quantities (one per import) -> reference unit of their dimension
SIGNALS = {"hall_resistance": "ohm", "resistance": "ohm", "conductance": "S", "current": "A"}
TARGETS = tuple(RUN_TARGETS) + tuple(SIGNALS)
#: header patterns used when no --column names a target (first match wins)
_AUTO = (
    ("cycle", r"^(cycle|loop)s?( ?(no|nr|#|number|index))?$"),
    ("step", r"^(step|state|level)s?( ?(no|nr|#|number|index))?$"),
    ("pulse_width", r"^(pulse ?)?(width|duration|length)|^t_?p(ulse)?$|^tp$"),
    ("pulse_current", r"^(pulse ?|write ?)?(current|amplitude)|^i(_?p(ulse)?|_?write)?$"),
    ("read_current", r"^read ?current|^i_?read$"),
    ("hall_voltage", r"^(hall ?voltage|v_?(h|xy|hall))$"),
    ("time", r"^(time|t|elapsed( time)?|timestamp)$"),
    ("pulse_index", r"^(pulse|pulse ?(no|nr|#|number|index)|#|n|index)$"),
    ("conductance", r"^(conductance|g)$"),
    ("hall_resistance", r"^(r_?h|r_?xy|r_?hall|hall ?(resistance|r)|rh)$"),
    ("resistance", r"^(resistance|r|r_?xx)$"),
)
_WIDTH_PATTERN = dict(_AUTO)["pulse_width"]
_SAMPLE_HEADERS = re.compile(r"^(sample|device|chip|die|sample ?(id|name)|device ?(id|name))$", re.I)


# --------------------------------------------------------------------------- units

@lru_cache(maxsize=1)
def _ureg():
    import pint
    try:        # parsed definitions cached on disk: ~0.05 s instead of ~1 s per process
        return pint.UnitRegistry(cache_folder=":auto:")
    except Exception:   # no writable cache folder: parse the definitions every time
        return pint.UnitRegistry()


def unit_factor(unit: str, reference: str, where: str) -> tuple[float, str]:
    """(factor to ``reference``, normalised unit text); UserError when the dimensions differ."""
    ureg = _ureg()
    text = unit.strip().replace("Ohm", "ohm").replace("OHM", "ohm").replace("μ", "u").replace("µ", "u")
    try:
        q = ureg.Quantity(1.0, text)
        factor = float(q.to(reference).magnitude)
    except Exception as exc:     # pint raises several error types: all mean "not that unit"
        kind = "unknown unit" if "Undefined" in type(exc).__name__ else f"not a unit of {reference}"
        raise UserError(f"{where}: {unit!r}: {kind}") from None
    return factor, text


def parse_quantity(text: str, reference: str, where: str) -> float:
    """'10 ms', '10ms' or '0.01' (then in ``reference``) -> value in ``reference``."""
    m = re.fullmatch(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*", str(text))
    if not m:
        raise UserError(f"{where}: {text!r} is not a number with a unit")
    value = float(m.group(1))
    if not m.group(2):
        return value
    return value * unit_factor(m.group(2), reference, where)[0]


def header_unit(name: str) -> tuple[str, str | None]:
    """'Current(mA)' / 'I [mA]' / 'I / mA' -> ('Current', 'mA'); a bare name -> (name, None)."""
    name = " ".join(str(name).split())
    m = re.fullmatch(r"(.*?)\s*[\(\[]\s*([^\)\]]+?)\s*[\)\]]\s*", name)
    if m and m.group(1):
        return m.group(1), m.group(2)
    m = re.fullmatch(r"(.*?)\s+(?:/|in)\s+(\S+)", name)
    if m:
        return m.group(1), m.group(2)
    return name, None


# --------------------------------------------------------------------------- column mapping

@dataclass(frozen=True)
class ColumnMap:
    target: str
    source: str | int           # header name or 0-based index
    unit: str | None = None


def parse_column(text: str, key: str = "column", where: str | None = None) -> ColumnMap:
    """``target=SOURCE[:UNIT]``; SOURCE a header (quotes allowed) or a 0-based column index."""
    target, eq, rest = text.partition("=")
    target = target.strip()
    if not eq or not rest.strip():
        raise FieldError(key, f"{text!r}: expected TARGET=COLUMN[:UNIT]", where)
    if target not in TARGETS:
        raise FieldError(key, f"{text!r}: unknown target {target!r} (one of: {', '.join(TARGETS)})", where)
    rest = rest.strip()
    unit = None
    if rest[:1] in "\"'":
        end = rest.find(rest[0], 1)
        if end < 0:
            raise FieldError(key, f"{text!r}: unterminated quote", where)
        source, tail = rest[1:end], rest[end + 1:]
        if tail:
            if not tail.startswith(":") or not tail[1:].strip():
                raise FieldError(key, f"{text!r}: expected :UNIT after the quoted column name", where)
            unit = tail[1:].strip()
    else:
        source, colon, tail = rest.rpartition(":")
        if not colon:
            source, tail = rest, ""
        unit = tail.strip() or None
        if not source:
            source, unit = rest, None
    src: str | int = int(source) if re.fullmatch(r"\d+", source.strip()) else source
    return ColumnMap(target, src, unit)


def load_mapping(path: str) -> dict:
    """A TOML mapping file: ``[columns]`` target = "COLUMN[:UNIT]" or {column=, unit=},
    optional ``[constants]`` target = "10 ms", ``[sample]`` and top-level kind/delimiter/header."""
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such mapping file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserError(f"{path}: cannot read mapping: {exc}") from None
    unknown = sorted(set(doc) - {"columns", "constants", "sample", "kind", "delimiter", "header",
                                 "read_voltage"})
    if unknown:
        raise UserError(f"{path}: {unknown[0]}: unknown key")
    cols = []
    for target, spec in (doc.get("columns") or {}).items():
        where = f"{path}: columns.{target}"
        if isinstance(spec, dict):
            bad = sorted(set(spec) - {"column", "unit"})
            if bad or "column" not in spec:
                raise UserError(f"{where}: expected {{column = ..., unit = ...}}")
            src = spec["column"]
            text = f"{target}={src}" if isinstance(src, int) else f'{target}="{src}"'
            if spec.get("unit"):
                text += f":{spec['unit']}"
            cols.append(parse_column(text, f"columns.{target}", str(path)))
        elif isinstance(spec, (str, int)):
            cols.append(parse_column(f"{target}={spec}", f"columns.{target}", str(path)))
        else:
            raise UserError(f"{where}: expected \"COLUMN[:UNIT]\" or a table")
    out = dict(doc)
    out["columns"] = cols
    return out


# --------------------------------------------------------------------------- reading one file

@dataclass
class Table:
    """One parsed file: its cells (strings or numbers), where each row started, and metadata."""

    path: str
    frame: pd.DataFrame              # columns by header (or "0", "1", ... without a header)
    headers: list[str]               # as written (whitespace normalised)
    first_line: int                  # file line where ``text`` starts
    text: str                        # header + data (for exact line numbers on errors)
    delimiter: str
    pymeasure: dict = field(default_factory=dict)    # Procedure parameters of a Results file
    procedure: str | None = None
    comments: list[str] = field(default_factory=list)
    skip: int = 0                    # header records at the start of ``text``

    def line_of(self, row: int) -> int:
        """File line where data row ``row`` (0-based, as in the frame) starts."""
        reader = csv.reader(io.StringIO(self.text), delimiter=self.delimiter)
        start = 1
        r = -1 - self.skip
        for rec in reader:
            if any(c.strip() for c in rec):
                r += 1
                if r == row:
                    return self.first_line + start - 1
            start = reader.line_num + 1
        return self.first_line


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _delimiter(sample: str, path: str) -> str:
    if path.lower().endswith((".tsv", ".tab")):
        return "\t"
    counts = {d: 0 for d in ",\t;"}
    quoted = False
    for ch in sample:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
        elif not quoted and ch == "\n":
            break
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def read_table(path: str, *, header: bool | None = None, delimiter: str | None = None) -> Table:
    """Parse one CSV/TSV/PyMeasure Results file (UserError naming file and line on bad input)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{path}: no such file")
    try:
        raw = p.read_bytes()
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise UserError(f"{path}: line {line}: not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None
    # leading comment block: PyMeasure's "#Procedure/#Parameters/#Data" or free comments
    n_comment, pos = 0, 0
    comments: list[str] = []
    while pos < len(text):                # scan line by line only through the comment block
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        line = text[pos:end]
        if not (line.startswith("#") or not line.strip()):
            break
        comments.append(line.rstrip("\r"))
        n_comment += 1
        pos = end + 1
    params, procedure = _pymeasure_header(comments)
    body = text[pos:]
    if not body.strip():
        raise UserError(f"{path}: no data rows")
    delim = delimiter or _delimiter(body[:65536], path)
    first = next(csv.reader(io.StringIO(body), delimiter=delim))
    if header is None:
        header = any(c.strip() and not _is_number(c) for c in first)
    try:
        frame = pd.read_csv(io.StringIO(body), sep=delim, header=0 if header else None,
                            skipinitialspace=True, skip_blank_lines=True, dtype=None,
                            low_memory=False, keep_default_na=False, na_values=[""])
    except pd.errors.ParserError as exc:
        msg = str(exc)
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", msg)
        if m:      # pandas counts records; find the physical line of the long row
            want = int(m.group(1))
            rd = csv.reader(io.StringIO(body), delimiter=delim)
            start = 1
            for rec in rd:
                if len(rec) > want:
                    raise UserError(f"{path}: line {n_comment + start}: {len(rec)} fields, the "
                                    f"header has {want} (extra cells past the last column)") from None
                start = rd.line_num + 1
        raise UserError(f"{path}: cannot parse: {msg.splitlines()[-1]}") from None
    except (pd.errors.EmptyDataError, ValueError) as exc:
        raise UserError(f"{path}: cannot parse: {exc}") from None
    if header:
        headers = [" ".join(str(c).split()) for c in first]
        if len(headers) != frame.shape[1]:
            headers = [" ".join(str(c).split()) for c in frame.columns]
    else:
        headers = [str(i) for i in range(frame.shape[1])]
    frame.columns = range(frame.shape[1])
    return Table(path=str(path), frame=frame, headers=headers,
                 first_line=n_comment + 1, text=body, skip=1 if header else 0,
                 delimiter=delim, pymeasure=params, procedure=procedure,
                 comments=[c for c in comments if c.strip()])


def _pymeasure_header(comments: list[str]) -> tuple[dict, str | None]:
    """Parameters of a PyMeasure Results header (``#Procedure: <...>``, ``#\\tName: value``).

    Parsed here rather than by ``Results.parse_header``, which imports the Procedure's module
    named in the file (running code from a data file)."""
    params: dict[str, str] = {}
    procedure = None
    section = None
    for line in comments:
        body = line[1:] if line.startswith("#") else line
        if body.startswith("Procedure"):
            m = re.search(r"<(.*)>", body)
            procedure = m.group(1) if m else body.partition(":")[2].strip()
        elif body.rstrip(":") in ("Parameters", "Metadata", "Data"):
            section = body.rstrip(":")
        elif body.startswith("\t") and section in ("Parameters", "Metadata"):
            name, sep, value = body[1:].partition(": ")
            if sep:
                params[name.strip()] = value.strip()
    return params, procedure


# --------------------------------------------------------------------------- one file -> columns

@dataclass
class FileImport:
    """What one file gave: run columns in SI (signal in its own unit) and its metadata."""

    path: str
    columns: dict[str, np.ndarray]
    notes: list[str]
    constants: dict[str, Any]
    sample: dict
    procedure: str | None = None
    units: dict[str, str] = field(default_factory=dict)    # target -> unit stored


def _find(table: Table, source: str | int, where: str) -> int:
    if isinstance(source, int):
        if source >= len(table.headers):
            raise UserError(f"{where}: column index {source} out of range "
                            f"({len(table.headers)} columns, counted from 0)")
        return source
    want = " ".join(source.split())
    squash = (lambda t: "".join(t.split()).lower())
    for pred in (lambda h: h == want, lambda h: h.lower() == want.lower(),
                 lambda h: squash(h) == squash(want),
                 lambda h: header_unit(h)[0].lower() == want.lower()):
        hits = [i for i, h in enumerate(table.headers) if pred(h)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise UserError(f"{where}: column {source!r} matches {len(hits)} columns")
    raise UserError(f"{where}: no column {source!r} (columns: {', '.join(map(repr, table.headers))})")


def _numeric(table: Table, col: int, where: str, *, required: bool) -> np.ndarray:
    s = table.frame[col]
    if s.dtype.kind in "fiu":
        v = s.to_numpy(dtype=float)
    else:
        v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(np.isnan(v) & s.notna().to_numpy())
        if bad.size:
            r = int(bad[0])
            raise UserError(f"{table.path}: line {table.line_of(r)}, column {table.headers[col]!r}: "
                            f"{str(s.iloc[r])!r} is not a number")
    if required:
        empty = np.flatnonzero(np.isnan(v))
        if empty.size:
            r = int(empty[0])
            raise UserError(f"{table.path}: line {table.line_of(r)}, column {table.headers[col]!r}: "
                            "empty cell")
    return v


def _constant(series: pd.Series) -> Any:
    """The single value of a column whose non-empty cells are all equal (else None)."""
    vals = series.dropna()
    if vals.empty:
        return None
    first = vals.iloc[0]
    if vals.dtype.kind in "fiu":
        return first.item() if np.all(vals.to_numpy() == first) else None
    return str(first).strip() if (vals.astype(str).str.strip() == str(first).strip()).all() else None


def map_file(table: Table, columns: Sequence[ColumnMap], constants: dict[str, str]) -> FileImport:
    """Apply the mapping (or header patterns) to one table."""
    path = table.path
    notes: list[str] = []
    by_target: dict[str, tuple[int, str | None]] = {}
    for cm in columns:
        if cm.target in by_target:
            raise FieldError("column", f"{cm.target}: given twice")
        try:
            by_target[cm.target] = (_find(table, cm.source, cm.target), cm.unit)
        except UserError as exc:
            raise FieldError("column", f"{path}: {exc}") from None
    given = set(by_target)
    used = {i for i, _ in by_target.values()}
    if not any(t in SIGNALS for t in given):      # header patterns fill what was not mapped
        for target, pattern in _AUTO:
            if target in by_target:
                continue
            if target in SIGNALS and any(t in SIGNALS for t in by_target):
                continue
            for i, h in enumerate(table.headers):
                if i not in used and re.search(pattern, header_unit(h)[0].strip().lower()):
                    by_target[target] = (i, None)
                    used.add(i)
                    notes.append(f"{target} <- {h!r} (by its name)")
                    break
    signal = [t for t in by_target if t in SIGNALS]
    if not signal:
        raise FieldError("column", f"{path}: cannot tell which column is the signal (columns: "
                                   f"{', '.join(map(repr, table.headers))}); map one, e.g. "
                                   "hall_resistance=NAME:ohm")
    if len(signal) > 1:
        raise UserError(f"{path}: two signal columns ({', '.join(signal)}); map one")
    out: dict[str, np.ndarray] = {}
    units: dict[str, str] = {}
    for target, (col, unit) in by_target.items():
        name, hunit = header_unit(table.headers[col])
        unit = unit or hunit
        ref = RUN_TARGETS.get(target) or SIGNALS[target]
        where = f"{path}: column {table.headers[col]!r} ({target})"
        required = target == "pulse_current" or target in SIGNALS
        v = _numeric(table, col, where, required=required)
        if not required and np.isnan(v).any():
            const = _constant(pd.Series(v))
            if const is not None:        # given once (or on some rows): the same for all rows
                v = np.full(v.size, float(const))
        if ref == "1":
            out[target] = v
            continue
        if unit is None:
            unit = ref
            notes.append(f"{target}: no unit given for {table.headers[col]!r}, taken as {ref}")
        factor, unit_text = unit_factor(unit, ref, where)
        if target in ("conductance", "current"):      # keep the unit the lab measured in
            out[target] = v
            units[target] = unit_text
        else:
            out[target] = v * factor if factor != 1.0 else v
            units[target] = ref
    # constant columns (not mapped) -> metadata; a sample name -> sample id
    consts: dict[str, Any] = {}
    sample: dict[str, Any] = {}
    for i, h in enumerate(table.headers):
        if i in used:
            continue
        value = _constant(table.frame[i])
        if value is None:
            continue
        name, unit = header_unit(h)
        if _SAMPLE_HEADERS.match(name.strip()):
            sample["id"] = str(value)
            continue
        entry: dict[str, Any] = {"value": value}
        if unit:
            entry["unit"] = unit
        consts[h] = entry
        if ("pulse_width" not in out and isinstance(value, (int, float))
                and re.search(_WIDTH_PATTERN, name.strip().lower())):
            w = value * (unit_factor(unit, "s", f"{path}: column {h!r}")[0] if unit else 1.0)
            out["pulse_width"] = np.full(len(table.frame), w)
            notes.append(f"pulse_width <- constant column {h!r} = {w:g} s")
    for name, value in table.pymeasure.items():           # PyMeasure parameters
        consts.setdefault(name, {"value": value, "source": "PyMeasure parameter"})
        if _SAMPLE_HEADERS.match(name.strip()):
            sample.setdefault("id", value)
        m = re.search(_WIDTH_PATTERN, header_unit(name)[0].strip().lower())
        if m and "pulse_width" not in out:
            try:
                w = parse_quantity(value, "s", f"{path}: parameter {name!r}")
            except UserError:
                continue
            out["pulse_width"] = np.full(len(table.frame), w)
            notes.append(f"pulse_width <- PyMeasure parameter {name!r} = {w:g} s")
    for target, text in constants.items():
        ref = RUN_TARGETS.get(target)
        if ref is None:
            raise FieldError("const", f"{target}: not a run column (one of: {', '.join(RUN_TARGETS)})")
        try:
            value = parse_quantity(text, ref, target)
        except UserError as exc:
            raise FieldError("const", str(exc)) from None
        out[target] = np.full(len(table.frame), value)
    if "pulse_width" in out:
        w = out["pulse_width"][np.isfinite(out["pulse_width"])]
        if w.size and np.all(w == w[0]):
            consts.setdefault("pulse_width", {"value": float(w[0]), "unit": "s"})
    units_note = ", ".join(f"{t} [{u}]" for t, u in units.items())
    notes.insert(0, f"{Path(path).name}: {len(table.frame)} rows; {units_note}")
    if table.procedure:
        notes.append(f"PyMeasure Results of {table.procedure}: {len(table.pymeasure)} parameters "
                     "kept as metadata")
    return FileImport(path=path, columns=out, notes=notes, constants=consts, sample=sample,
                      procedure=table.procedure, units=units)


# --------------------------------------------------------------------------- kind, cycles, steps

def infer_kind(current: np.ndarray | None, has_step: bool) -> tuple[str, str]:
    """(kind, reason) from the pulse currents of the data."""
    if current is None or not np.isfinite(current).any():
        return ("levels" if has_step else "potdep",
                "a state column and no pulse currents" if has_step
                else "no pulse currents: reads along a pulse train")
    c = current[np.isfinite(current) & (current != 0)]
    pos, neg = np.unique(np.round(c[c > 0], 12)), np.unique(np.round(-c[c < 0], 12))
    if pos.size <= 2 and neg.size <= 2:
        return "potdep", (f"{pos.size} positive and {neg.size} negative pulse amplitude(s): "
                          "trains of equal pulses")
    if neg.size <= 1 < pos.size and not has_step:
        return "staircase", f"{pos.size} rising positive amplitudes and a single reset amplitude"
    if neg.size <= 1 < pos.size:
        return "staircase", f"{pos.size} positive amplitudes with a state column"
    return "loop", f"the pulse current sweeps {pos.size} positive and {neg.size} negative values"


def loop_cycles(current: np.ndarray) -> np.ndarray:
    """Cycle index of a loop sweep: a new cycle where the current rises through zero again after
    a negative excursion (0 → +max → −max → 0 is one cycle)."""
    n = current.size
    starts = np.flatnonzero((current[1:] > 0) & (current[:-1] <= 0)) + 1
    # a crossing starts a cycle when a negative current came since the last start
    neg_count = np.cumsum(current < 0)
    mark = np.zeros(n, dtype=np.int64)
    last = 0
    for i in starts:            # a few crossings per cycle: a loop over them is fine
        if neg_count[i - 1] > (neg_count[last - 1] if last > 0 else 0):
            mark[i] = 1
            last = i
    return np.cumsum(mark)


def potdep_cycles(sign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cycle, step) of a potentiation/depression train: a cycle is one + ramp then one − ramp
    (of any lengths); step = pulse number within the cycle."""
    sgn = np.sign(sign)
    new = np.zeros(sgn.size, dtype=bool)
    new[1:] = (sgn[1:] > 0) & (sgn[:-1] < 0)
    cyc = np.cumsum(new)
    start = np.flatnonzero(np.r_[True, new[1:]])
    step = np.arange(sgn.size) - start[cyc]
    return cyc.astype(np.int64), step.astype(np.int64)


def _potdep_signs(signal: np.ndarray, min_run: int = 3) -> np.ndarray:
    """Branch of each read when a data set has no currents: +1 where the pulse before it raised
    the signal, −1 where it lowered it; runs shorter than ``min_run`` pulses (noise on a flat
    stretch) are merged into their neighbours."""
    if signal.size < 2:
        return np.ones(signal.size)
    d = np.sign(np.diff(signal))
    d[d == 0] = 1
    for _ in range(50):
        starts = np.r_[0, np.flatnonzero(d[1:] != d[:-1]) + 1]
        lengths = np.diff(np.r_[starts, d.size])
        short = np.flatnonzero(lengths < min_run)
        if short.size == 0 or starts.size == 1:
            break
        j = short[np.argmin(lengths[short])]          # shortest first: merge it into its neighbours
        d[starts[j]:starts[j] + lengths[j]] *= -1
    return np.r_[d[:1], d].astype(float)


# --------------------------------------------------------------------------- the import

@dataclass
class ImportResult:
    outputs: list[str]
    kind: str
    kind_note: str
    quantity: str
    unit: str
    rows: int
    notes: list[str]


def _assemble(files: list[FileImport], kind: str | None,
              kind_from: str) -> tuple[dict, str, str, str, str, bool]:
    """Concatenate files as cycles; (block, kind, reason, quantity, unit, polarity_only)."""
    sig = [t for t in files[0].columns if t in SIGNALS]
    quantity = sig[0]
    unit = files[0].units[quantity]
    for f in files[1:]:
        s = [t for t in f.columns if t in SIGNALS]
        u = f.units.get(s[0])
        if s[0] != quantity or u != unit:
            raise UserError(f"{f.path}: signal is {s[0]} [{u}], the first file's is {quantity} [{unit}]")
    has_cur = all("pulse_current" in f.columns for f in files)
    cur_all = np.concatenate([f.columns["pulse_current"] for f in files]) if has_cur else None
    has_step = all("step" in f.columns for f in files)
    if kind is None:
        kind, reason = infer_kind(cur_all, has_step)
        reason = f"inferred: {reason}"
    else:
        if kind not in KINDS:
            raise FieldError("kind", f"{kind}: one of {', '.join(KINDS)}")
        reason = f"given by {kind_from}"
    parts: dict[str, list[np.ndarray]] = {c: [] for c in
                                          ("pulse_index", "cycle", "step", "pulse_current", "pulse_width",
                                           "read_current", "hall_voltage", "hall_resistance", "time")}
    cyc_offset = 0
    idx_offset = 0
    polarity_only = False
    for f in files:
        c = f.columns
        y = c[quantity]
        n = y.size
        cur = c.get("pulse_current")
        if cur is None:
            if kind == "potdep":
                cur = _potdep_signs(y)
                polarity_only = True
            elif kind == "levels":
                cur = np.zeros(n)
            else:
                raise FieldError("column", f"{f.path}: a {kind} needs the pulse current; map it, "
                                           "pulse_current=NAME:UNIT")
        if "cycle" in c:
            cyc = c["cycle"].astype(np.int64)
            cyc = cyc - cyc.min()
            step = c["step"].astype(np.int64) if "step" in c else _rank_in_group(cyc)
        elif kind == "loop":
            cyc = loop_cycles(cur)
            step = _rank_in_group(cyc)
        elif kind == "potdep":
            cyc, step = potdep_cycles(cur)
        elif kind == "levels":
            if "step" not in c:
                raise FieldError("column", f"{f.path}: levels need a state column (step=NAME)")
            step = c["step"].astype(np.int64)
            cyc = _rank_in_group(step)            # repeated reads of a state = its cycles
        else:   # staircase: a cycle starts at each reset (negative) pulse
            neg = cur < 0
            start = neg & ~np.r_[False, neg[:-1]]
            cyc = np.maximum(np.cumsum(start) - (1 if start[0] else 0), 0)
            step = c["step"].astype(np.int64) if "step" in c else _rank_in_group(cyc)
        if "step" in c and kind != "levels":
            step = c["step"].astype(np.int64)
        parts["cycle"].append(cyc + cyc_offset)
        cyc_offset += int(cyc.max()) + 1 if n else 0
        parts["step"].append(step)
        parts["pulse_current"].append(cur)
        parts["pulse_index"].append(np.arange(n, dtype=np.int64) + idx_offset)
        idx_offset += n
        parts["hall_resistance"].append(y)
        parts["pulse_width"].append(c.get("pulse_width", np.full(n, np.nan)))
        parts["read_current"].append(c.get("read_current", np.full(n, np.nan)))
        parts["hall_voltage"].append(c.get("hall_voltage", np.full(n, np.nan)))
        t = c.get("time")
        parts["time"].append(np.full(n, np.nan) if t is None else t - np.nanmin(t) if t.size else t)
    block = {k: np.concatenate(v) for k, v in parts.items()}
    return block, kind, reason, quantity, unit, polarity_only


def _rank_in_group(group: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal ``group`` values (in order of appearance)."""
    g = np.asarray(group)
    order = np.argsort(g, kind="stable")
    sg = g[order]
    start = np.r_[0, np.flatnonzero(sg[1:] != sg[:-1]) + 1]
    counts = np.diff(np.r_[start, sg.size])
    rank = np.arange(sg.size) - np.repeat(start, counts)
    out = np.empty_like(rank)
    out[order] = rank
    return out.astype(np.int64)


def import_files(paths: Sequence[str], output: str, *, columns: Sequence[ColumnMap] = (),
                 constants: dict[str, str] | None = None, kind: str | None = None,
                 kind_from: str = "kind", sample: dict | None = None, each: bool = False,
                 header: bool | None = None, delimiter: str | None = None,
                 read_voltage: str | None = None, overwrite: bool = False,
                 mapping_text: str = "") -> ImportResult:
    """Import files into one run (each file one or more cycles) or, with ``each``, one run per
    file into the folder ``output``. Everything is parsed before anything is written."""
    if not paths:
        raise UserError("import: no files given")
    constants = dict(constants or {})
    outs: list[str]
    if each:
        folder = Path(output)
        if not folder.is_dir():
            raise FieldError("output", f"{output}: not an existing folder (one run per input file goes there)")
        outs = [str(folder / (Path(p).stem + ".h5")) for p in paths]
        if len(set(outs)) != len(outs):
            raise UserError(f"{output}: two input files have the same name stem")
    else:
        outs = [output]
    for o in outs:
        op = Path(o)
        if op.suffix.lower() not in (".h5", ".hdf5", ".nxs"):
            raise UserError(f"{o}: a run file ends in .h5")
        check_output_file(o, overwrite=overwrite)
    rv = None
    if read_voltage is not None:
        try:
            rv = parse_quantity(read_voltage, "V", "read_voltage")
        except UserError as exc:     # "read_voltage: <reason>" as a field error
            raise FieldError("read_voltage", str(exc).split(": ", 1)[1]) from None
    tables = [read_table(p, header=header, delimiter=delimiter) for p in paths]
    files = [map_file(t, columns, constants) for t in tables]
    groups = [[f] for f in files] if each else [files]
    plans = []
    for out, group in zip(outs, groups):
        plans.append((out, group, *_assemble(group, kind, kind_from)))
    notes: list[str] = []
    for f in files:
        notes += f.notes
    rows = 0
    written: list[str] = []
    try:
        for out, group, block, k, reason, quantity, unit, polarity_only in plans:
            _write(out, group, block, k, reason, quantity, unit, polarity_only, sample or {}, rv,
                   mapping_text)
            written.append(out)
            rows += len(block["pulse_index"])
    except BaseException:
        for w in written:
            Path(w).unlink(missing_ok=True)
        raise
    k0, reason0, q0, u0, polarity_only = plans[0][3:]
    if polarity_only:
        notes.append("no pulse currents: potentiation/depression branches taken from the trend "
                     "of the signal; pulse_current holds the polarity only (units '1')")
    return ImportResult(outputs=outs, kind=k0, kind_note=reason0, quantity=q0, unit=u0,
                        rows=rows, notes=notes)


def _write(out: str, group: list[FileImport], block: dict, kind: str, reason: str, quantity: str,
           unit: str, polarity_only: bool, sample_opts: dict, read_voltage: float | None,
           mapping_text: str) -> None:
    import h5py

    from labspin import __version__
    from labspin.schema import RunInfo, now_iso
    from labspin.store import RunWriter

    constants: dict[str, Any] = {}
    for f in group:
        for k, v in f.constants.items():
            prev = constants.get(k)
            if prev is None:
                constants[k] = v if len(group) == 1 else dict(v, per_file=[v["value"]])
            elif "per_file" in prev:
                prev["per_file"].append(v["value"])
    sample = {"type": "imported", "imported": True}
    for f in group:
        for k, v in f.sample.items():
            sample.setdefault(k, v)
    sample.update(sample_opts)
    sample.setdefault("id", Path(group[0].path).stem)
    params = {"source_files": [os.path.abspath(f.path) for f in group], "kind_note": reason,
              "quantity": quantity, "unit": unit, "constants": constants}
    if read_voltage is not None:
        params["read_voltage"] = read_voltage
    if polarity_only:
        params["pulse_current"] = "polarity only (no amplitudes in the source)"
    recipe_text = mapping_text or f'# imported by labspin import\nkind = "{kind}"\n'
    protocol = {"name": f"import:{Path(group[0].path).stem}", "kind": kind, "recipe": recipe_text,
                "recipe_path": None, "parameters": params}
    station = {"imported": True, "source_files": params["source_files"],
               "pymeasure_procedures": sorted({f.procedure for f in group if f.procedure})}
    n = len(block["pulse_index"])
    info = RunInfo(protocol=protocol, station=station, sample=sample, total_points=n,
                   start_index=0, start_time=now_iso(), software_version=__version__)
    target = Path(out)
    tmp = target.with_name(f".{target.stem}.import{os.getpid()}.h5")
    tmp.unlink(missing_ok=True)
    writer = RunWriter(tmp, quantity=(quantity, unit), flush_interval=60.0)
    try:
        writer.on_start(info)
        writer.on_points(block)
        writer.on_end("completed", None)
        with h5py.File(tmp, "a", libver="latest") as f:
            f.attrs["file_name"] = target.name
            if polarity_only:
                f["entry/data/pulse_current"].attrs["units"] = "1"
            if read_voltage is not None:
                f["entry/data/hall_resistance"].attrs["read_voltage"] = read_voltage
        os.replace(tmp, target)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise


def mapping_as_toml(columns: Sequence[ColumnMap], constants: dict[str, str], kind: str | None) -> str:
    """The mapping used, as TOML text (stored as the run's recipe: how it was imported)."""
    lines = ["# imported by labspin import", f"kind = {json.dumps(kind or 'inferred')}", "[columns]"]
    for c in columns:
        src = c.source if isinstance(c.source, int) else json.dumps(c.source, ensure_ascii=False)
        unit = f", unit = {json.dumps(c.unit)}" if c.unit else ""
        lines.append(f"{c.target} = {{ column = {src}{unit} }}")
    if constants:
        lines.append("[constants]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in constants.items()]
    return "\n".join(lines) + "\n"
