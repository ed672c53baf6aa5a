"""Dry run: what a recipe will ask of a station, and whether the station's limits allow it.

Pure arithmetic on the recipe's schedule and the station *spec*: it never imports a driver nor
creates a VISA resource manager, so an over-limit recipe is refused before any instrument is
touched. `labspin dry-run` prints `format_summary(dry_run(...))`; `labspin run` calls `check()`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


from labspin import formatting
from labspin.errors import UserError
from labspin.protocols import Recipe
from labspin.station import StationSpec

# Rough seconds per point beyond pulse widths and waits, and how each Hall-reader mode reads, come
# from the mode's registry entry (labspin.drivers.registry: no driver is imported).
DEFAULT_MODE_OVERHEAD = 0.1


def _mode(name: str):
    from labspin.drivers import registry
    return registry.hall_mode(name, None)

# 6221 timing on a real bench (UM 5-28, RM 5-39, UM 5-22/5-23; what is U is said in
# sim_backend/instruments/keithley6221.py): a Pulse Delta cycle is line-synchronised and lasts at
# least 5 power-line cycles; arming (the 6221 configures the 2182A) takes about ARM_TIME; a Delta
# reading needs 3 A/Ds of the 2182A (delay + NPLC line cycles each). The constants are the roles'
# defaults (PulseDeltaHallReader, K6221PulseSource, DeltaHallReader).
PDEL_MIN_PLC = 5
ARM_TIME = 0.1            # s (U)
DELTA_DELAY = 2e-3        # s, DeltaHallReader's default Delta delay
NVM_NPLC = 5.0            # the 2182A NPLC the roles set


LOCKIN_SETTLE = 10.0      # time constants a lock-in read waits (LockinHallReader's default)
LOCKIN_TAU = 0.1          # s, its default time constant
SMU_NPLC = 1.0            # SourceMeterHallReader's default


def seconds_per_point(mode: str, line_frequency: float = 50.0,
                      options: dict | None = None) -> float:
    """Seconds one staircase point (a write pulse and a read) takes on a real bench, beyond the
    widths and waits; `options`: the station's roles.hall_reader settings (else the defaults).

    pulse_delta: two list-sweep cycles (write + read pulse) of 5 PLC — 0.2 s at 50 Hz, 0.167 s
    at 60 Hz (5 and 6 points/s); the block is armed once. dc_delta: a fixed-output Pulse Delta
    pulse (arm + one 5-PLC cycle) and a Delta read (arm + count + 2 A/Ds of delay + NPLC line
    cycles) — 0.61 s at 50 Hz, 0.54 s at 60 Hz (1.6 and 1.9 points/s) with the defaults.
    lockin: the read waits `settle` time constants (1 s with the defaults) beyond the registry
    overhead; sourcemeter: two A/Ds (±I) of `nplc` line cycles beyond it. Other modes: their
    registry entry's overhead.
    """
    t = 1.0 / line_frequency
    o = options or {}
    if mode == "pulse_delta":
        return 2 * PDEL_MIN_PLC * t
    if mode == "dc_delta":
        count = int(o.get("count", 1))
        a2d = o.get("delay", DELTA_DELAY) + o.get("nvm_nplc", NVM_NPLC) * t
        return 2 * ARM_TIME + PDEL_MIN_PLC * t + (count + 2) * a2d
    entry = _mode(mode)
    base = entry.overhead if entry is not None else DEFAULT_MODE_OVERHEAD
    if mode == "lockin":
        return base + o.get("settle", LOCKIN_SETTLE) * o.get("time_constant", LOCKIN_TAU)
    if mode == "sourcemeter":
        return base + 2 * o.get("nplc", SMU_NPLC) * t
    return base


def _line_frequency(spec: StationSpec) -> float:
    """The station's power-line frequency ([simulator] line_frequency); 50 Hz (the slower) if
    the station does not say."""
    return spec.simulator.line_frequency if spec.simulator is not None else 50.0


_UNITS = {"pulse_current": "A", "read_current": "A", "pulse_width": "s", "compliance_voltage": "V"}


@dataclass(frozen=True)
class Violation:
    """One recipe value outside one station limit."""

    parameter: str        # recipe parameter, e.g. "stop", "amplitudes[3]"
    limit: str            # Limits field, e.g. "max_pulse_current"
    value: float          # what the recipe asks (for compliance_voltage: |I|·R_xx, V)
    limit_value: float
    unit: str

    def describe(self, note: str = "") -> str:
        relation = "is below" if self.limit.startswith("min_") else "exceeds"
        what = f"{_si(self.value, self.unit)}"
        if self.limit == "compliance_voltage":
            what = f"|I|·R_xx = {what}"
        return f"parameters.{self.parameter}{note}: {what} {relation} limits.{self.limit} = " \
               f"{_si(self.limit_value, self.unit)}"


@dataclass(frozen=True)
class DryRunSummary:
    recipe: str                     # recipe name
    recipe_file: str                # where it came from (error messages name it)
    kind: str
    station: str                    # station name
    simulated: bool
    points: int                     # reads (one per step)
    pulses: int                     # write pulses (steps with a non-zero current)
    cycles: int
    peak_current: float             # A, largest |pulse current|
    peak_read_current: float        # A
    min_pulse_width: float | None   # s, over the pulses actually sent
    max_pulse_width: float | None
    cross_section: float | None     # m², sample width × thickness
    peak_current_density: float | None   # A/m²
    r_xx: float | None              # ohm, if the station/sample gives it
    peak_voltage: float | None      # V, peak_current × r_xx
    energy: float | None            # J, Σ I²·R_xx·t_p over all pulses
    duration: float                 # s, estimate
    overhead: float                 # s per point used in the duration estimate
    limits: dict
    violations: tuple[Violation, ...]
    hall_mode: str = "dc_delta"     # the station's Hall-reader mode
    pulse_timing: str = ""          # how the pulse source times a pulse (registry capabilities)
    hall_settings: str = ""         # the station's roles.hall_reader settings, "key = value, ..."

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict:
        d = asdict(self)
        d["violations"] = [asdict(v) | {"message": v.describe()} for v in self.violations]
        return d


def _recipe_file(recipe: Recipe) -> str:
    return recipe.path or f"recipe {recipe.name!r}"


def dry_run(recipe: Recipe, spec: StationSpec, *, overhead: float | None = None) -> DryRunSummary:
    """Counts, peaks, current density, energy and duration estimates, and every limit violation."""
    protocol = recipe.protocol
    limits = spec.limits
    wrange = protocol.pulse_width_range()       # per segment, not per pulse: any length is cheap
    sample = spec.sample
    width, thickness = sample.get("width"), sample.get("thickness")
    cross = float(width) * float(thickness) if width and thickness else None
    r_xx = sample.get("r_xx")
    r_xx = float(r_xx) if r_xx else None
    if overhead is None:
        overhead = seconds_per_point(spec.hall_reader.mode, _line_frequency(spec),
                                     spec.hall_reader.options)
    host_timed, timing = _pulse_timing(spec)
    peak = protocol.peak_current

    violations: list[Violation] = []

    def add(parameter: str, limit: str, value: float, unit: str) -> None:
        v = Violation(parameter, limit, float(value), float(getattr(limits, limit)), unit)
        if v not in violations:
            violations.append(v)

    for d in protocol.demands():
        mag = abs(d.value)
        if d.quantity == "pulse_current":
            if not mag <= limits.max_pulse_current:
                add(d.parameter, "max_pulse_current", mag, "A")
            if r_xx is not None and not mag * r_xx <= limits.compliance_voltage:
                add(d.parameter, "compliance_voltage", mag * r_xx, "V")
        elif d.quantity == "read_current":
            if not mag <= limits.max_read_current:
                add(d.parameter, "max_read_current", mag, "A")
            if r_xx is not None and not mag * r_xx <= limits.compliance_voltage:
                add(d.parameter, "compliance_voltage", mag * r_xx, "V")
        elif d.quantity == "pulse_width":
            if d.value < limits.min_pulse_width:
                add(d.parameter, "min_pulse_width", d.value, "s")
            if host_timed and 0 < d.value < limits.min_smu_pulse_width:
                add(d.parameter, "min_smu_pulse_width", d.value, "s")
            if d.value > limits.max_pulse_width:
                add(d.parameter, "max_pulse_width", d.value, "s")
    # safety net: the schedule itself, in case a kind's demands() missed a value
    if not violations:
        if peak > limits.max_pulse_current:
            add("(schedule)", "max_pulse_current", peak, "A")
        if protocol.peak_read_current > limits.max_read_current:
            add("(schedule)", "max_read_current", protocol.peak_read_current, "A")
        if wrange and wrange[0] < limits.min_pulse_width:
            add("(schedule)", "min_pulse_width", wrange[0], "s")
        if wrange and wrange[1] > limits.max_pulse_width:
            add("(schedule)", "max_pulse_width", wrange[1], "s")
        if host_timed and wrange and wrange[0] < limits.min_smu_pulse_width:
            add("(schedule)", "min_smu_pulse_width", wrange[0], "s")

    return DryRunSummary(
        recipe=recipe.name, recipe_file=_recipe_file(recipe), kind=recipe.kind, station=spec.name,
        simulated=spec.simulated, points=len(protocol), pulses=protocol.n_pulses,
        cycles=protocol.n_cycles, peak_current=peak, peak_read_current=protocol.peak_read_current,
        min_pulse_width=wrange[0] if wrange else None,
        max_pulse_width=wrange[1] if wrange else None,
        cross_section=cross, peak_current_density=peak / cross if cross else None,
        r_xx=r_xx, peak_voltage=peak * r_xx if r_xx is not None else None,
        energy=protocol.energy(r_xx) if r_xx is not None else None,
        duration=protocol.duration(overhead), overhead=float(overhead),
        limits=limits.as_dict(), violations=tuple(violations), hall_mode=spec.hall_reader.mode,
        pulse_timing=timing,
        hall_settings=", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                                for k, v in spec.hall_reader.options.items()))


def _pulse_timing(spec: StationSpec) -> tuple[bool, str]:
    """(host-timed?, one line): how the station's pulse source times a pulse (registry)."""
    from labspin.drivers import registry
    source = spec.instruments.get(spec.pulse_source)
    entry = registry.entries().get(source.driver) if source is not None else None
    cap = entry.capabilities if entry is not None else None
    if cap is None:
        return False, "n/a"
    floor = spec.limits.min_smu_pulse_width
    if cap.min_pulse_width is None:
        return True, (f"host-timed by the PC (output on, wait, off): widths >= "
                      f"limits.min_smu_pulse_width = {_si(floor, 's')}; the width that flowed is recorded")
    return False, (f"hardware-timed by the {source.driver} "
                   f"({_si(cap.min_pulse_width, 's')} … {_si(cap.max_pulse_width, 's')})")


def check(recipe: Recipe, spec: StationSpec) -> DryRunSummary:
    """The dry-run as a gate: UserError "<recipe file>: parameters.<key>: ... limits.<limit> ..."."""
    summary = dry_run(recipe, spec)
    if summary.violations:
        first = summary.violations[0]
        more = len(summary.violations) - 1
        override = " (override)" if first.parameter.split("[")[0] in recipe.overrides else ""
        raise UserError(f"{summary.recipe_file}: {first.describe(override)} of station {spec.name!r}"
                        + (f" (and {more} more violation{'s' * (more > 1)})" if more else ""))
    return summary


# --- formatting -----------------------------------------------------------------------------

_si = formatting.si
_hms = formatting.duration


def format_summary(summary: DryRunSummary) -> str:
    """A short human table; the last line says OK or lists each violation."""
    lim = summary.limits
    rows = [
        ("recipe", f"{summary.recipe} ({summary.kind})  {summary.recipe_file}"),
        ("station", summary.station + ("  [simulated]" if summary.simulated else "")),
        ("points (reads)", f"{summary.points}  in {summary.cycles} cycle(s)"),
        ("pulses", str(summary.pulses)),
        ("peak pulse current", f"{_si(summary.peak_current, 'A')}  (limit {_si(lim['max_pulse_current'], 'A')})"),
        ("peak read current", f"{_si(summary.peak_read_current, 'A')}  (limit {_si(lim['max_read_current'], 'A')})"),
        ("pulse width", "n/a" if summary.min_pulse_width is None else
         (_si(summary.min_pulse_width, 's') if summary.min_pulse_width == summary.max_pulse_width
          else f"{_si(summary.min_pulse_width, 's')} … {_si(summary.max_pulse_width, 's')}")
         + f"  (limits {_si(lim['min_pulse_width'], 's')} … {_si(lim['max_pulse_width'], 's')})"),
        ("peak current density", "n/a (sample width/thickness missing)" if summary.peak_current_density is None
         else f"{summary.peak_current_density:.3g} A/m²"),
        ("peak voltage (I·R_xx)", "n/a (sample r_xx not given)" if summary.peak_voltage is None
         else f"{_si(summary.peak_voltage, 'V')}  (compliance {_si(lim['compliance_voltage'], 'V')})"),
        ("pulse energy", "n/a (sample r_xx not given)" if summary.energy is None else
         f"{_si(summary.energy / max(summary.pulses, 1), 'J')} per pulse (mean), "
         f"{_si(summary.energy, 'J')} total over {summary.pulses} pulses"),
        ("pulse timing", summary.pulse_timing or "n/a"),
        ("Hall reads", f"{summary.hall_mode}: {getattr(_mode(summary.hall_mode), 'reads', '')}"
         + (f"  ({summary.hall_settings})" if summary.hall_settings else "")),
        ("duration (estimate)", f"{_hms(summary.duration)}  ({_si(summary.overhead, 's')}/point overhead)"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    if summary.ok:
        lines.append(f"{'limits':<{width}}  OK")
    else:
        lines.append(f"{'limits':<{width}}  {len(summary.violations)} VIOLATION(S):")
        lines += [f"  {v.describe()}" for v in summary.violations]
    return "\n".join(lines)
