"""Keithley 6221 on pymeasure 0.16, with what pymeasure lacks for SOT switching work.

Added: Pulse Delta (`SOUR:PDEL:*`, 6221 + 2182A), sweep settings and custom lists
(`SOUR:SWE:*`, `SOUR:LIST:CURR|DEL`, for hardware-timed pulse trains), buffer/trace helpers, the
2182A serial pass-through. Changed: current, compliance, waveform and phase-marker setters *refuse*
out-of-range values (pymeasure silently clips them, so a typo would reach a device as a
different current); `shutdown()` aborts armed sweeps, clears the device (VISA device clear, so a
late reply is never taken for the level the ramp starts from), ramps the DC level to zero and
turns the output off without ever raising. Every string follows ../shared/reference/scpi.md §2
and §7.A.

What pymeasure 0.16 already has is used as is: `delta_arm()`, `delta_abort()`, `delta_values`,
`measurement_events`, `check_errors()`. Not used: `delta_start()` (`:INIT:IMM` alone) — the roles
send `:TRAC:CLE;:INIT:IMM` as one message so that `TRAC:POIN:ACT?` counts only the new run's
readings without a second bus message; `wait_for_buffer()` — it sleeps with `time.sleep` and tests
`*STB?` bits set up by `config_buffer()` (which resets the status model), so on the simulator's
virtual clock a run armed but not yet started would never be seen to finish; the roles poll
`TRAC:POIN:ACT?` with the clock's sleep instead (tests/test_fidelity_6221.py).
"""
from __future__ import annotations

import logging
import numbers
import time

import numpy as np
from pymeasure.instruments import Instrument
from pymeasure.instruments.keithley import Keithley6221 as _PMKeithley6221
from pymeasure.instruments.validators import (
    joined_validators,
    strict_discrete_set,
    strict_range,
)

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

MAX_CURRENT = 0.105            # A, the 6221's output range (both polarities)


def strict_number(value, values):
    """strict_range that also refuses non-numbers with ValueError (not TypeError)."""
    if isinstance(value, (str, bytes, bool)) or not isinstance(value, numbers.Real):
        raise ValueError(f"Value of {value!r} is not a number in range [{min(values)},{max(values)}]")
    return strict_range(value, values)


# Values per SOUR:LIST:* message. The reference gives no limit for lists; the 6221 takes at most
# 100 points per SOUR:WAVE:ARB:DATA message, and public list-loading scripts send 100 at a time,
# so we never send more (U).
LIST_CHUNK = 100

DELAY_RANGE = [1e-3, 999999.999]     # SOUR:DEL, s; also taken for SOUR:LIST:DEL (U)


def strict_number_list(value, values, chunk: int | None = LIST_CHUNK) -> list[float]:
    """A non-empty sequence of numbers, each strictly within `values`; at most `chunk` of them."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise ValueError(f"Value of {value!r} is not a list of numbers")
    items = [float(strict_number(v, values)) for v in value]
    if not items:
        raise ValueError("an empty list cannot be sent")
    if chunk is not None and len(items) > chunk:
        raise ValueError(f"{len(items)} values in one message; at most {chunk}")
    return items


def _join_numbers(values) -> str:
    return ",".join(f"{v:g}" for v in values)


def _count_or_inf(value):
    """Counts are sent as integers ("1", not "1.0"); "INF" passes through."""
    return value if isinstance(value, str) else int(value)


class Keithley6221(_PMKeithley6221):
    """pymeasure's Keithley6221 plus Pulse Delta and strict limits (see module docstring)."""

    # pymeasure's `CommonBase.__getattribute__` guards the reserved names of dynamic properties
    # with a hasattr() that re-enters it: three Python calls per attribute read, a fifth of a
    # one-step run's host time on the simulator (benchmarks/bench_run.py, py-spy). This class has
    # no dynamic property, so it has no reserved name (tests/test_drivers_protocol.py holds that)
    # and plain attribute access is exact.
    __getattribute__ = object.__getattribute__

    # ----- strict replacements for pymeasure's clipping setters -----------------------------
    source_current = Instrument.control(
        ":SOUR:CURR?", ":SOUR:CURR %g",
        """Control the DC source current in A (strictly -0.105 … 0.105; refused, not clipped).""",
        validator=strict_number, values=[-MAX_CURRENT, MAX_CURRENT],
    )
    source_compliance = Instrument.control(
        ":SOUR:CURR:COMP?", ":SOUR:CURR:COMP %g",
        """Control the compliance voltage in V (strictly 0.1 … 105).""",
        validator=strict_number, values=[0.1, 105],
    )
    source_range = Instrument.control(
        ":SOUR:CURR:RANG?", ":SOUR:CURR:RANG:AUTO 0;:SOUR:CURR:RANG %g",
        """Control the source range in A (strictly -0.105 … 0.105); disables auto range.""",
        validator=strict_number, values=[-MAX_CURRENT, MAX_CURRENT],
    )
    source_delay = Instrument.control(
        ":SOUR:DEL?", ":SOUR:DEL %g",
        """Control the sweep source delay in s (strictly 1e-3 … 999999.999).""",
        validator=strict_number, values=DELAY_RANGE,
    )
    delta_delay = Instrument.control(
        ":SOUR:DELT:DELay?", ":SOUR:DELT:DELay %g",
        """Control the Delta delay in s (strictly 1e-3 … 9999.999; the manual's range —
        pymeasure also lets 0 and INF through, which the instrument rejects).""",
        validator=strict_number, values=[1e-3, 9999.999],
    )
    delta_buffer_points = Instrument.control(
        "TRAC:POIN?", "TRAC:POIN %d",
        """Control the buffer size for Delta runs (strictly 1 … 65536, the 6221 buffer).""",
        validator=strict_number, values=[1, 65536], cast=int,
    )
    buffer_points = Instrument.control(
        ":TRAC:POIN?", ":TRAC:POIN %d",
        """Control the buffer size (strictly 1 … 65536; pymeasure clips to 2 … 1024).""",
        validator=strict_number, values=[1, 65536], cast=int,
    )
    waveform_frequency = Instrument.control(
        ":SOUR:WAVE:FREQ?", ":SOUR:WAVE:FREQ %g",
        """Control the waveform frequency in Hz (strictly 1e-3 … 1e5).""",
        validator=strict_number, values=[1e-3, 1e5],
    )
    waveform_amplitude = Instrument.control(
        ":SOUR:WAVE:AMPL?", ":SOUR:WAVE:AMPL %g",
        """Control the waveform peak amplitude in A (strictly 2e-12 … 0.105).""",
        validator=strict_number, values=[2e-12, MAX_CURRENT],
    )
    waveform_offset = Instrument.control(
        ":SOUR:WAVE:OFFS?", ":SOUR:WAVE:OFFS %g",
        """Control the waveform DC offset in A (strictly -0.105 … 0.105).""",
        validator=strict_number, values=[-MAX_CURRENT, MAX_CURRENT],
    )
    waveform_phasemarker_phase = Instrument.control(
        ":SOUR:WAVE:PMAR?", ":SOUR:WAVE:PMAR %g",
        """Control the phase-marker phase in degrees (strictly 0 … 360, the manual's range;
        pymeasure clips to -180 … 180, so 270 would silently become 180).""",
        validator=strict_number, values=[0, 360],
    )
    waveform_phasemarker_line = Instrument.control(
        ":SOUR:WAVE:PMAR:OLIN?", ":SOUR:WAVE:PMAR:OLIN %d",
        """Control the Trigger Link line (1 … 6) that carries the phase marker.""",
        validator=strict_discrete_set, values=[1, 2, 3, 4, 5, 6], cast=int,
    )

    # ----- Pulse Delta (scpi.md §2.3) -------------------------------------------------------
    pulse_delta_high = Instrument.control(
        ":SOUR:PDEL:HIGH?", ":SOUR:PDEL:HIGH %g",
        """Control the Pulse Delta high (pulse) level in A (strictly -0.105 … 0.105).""",
        validator=strict_number, values=[-MAX_CURRENT, MAX_CURRENT],
    )
    pulse_delta_low = Instrument.control(
        ":SOUR:PDEL:LOW?", ":SOUR:PDEL:LOW %g",
        """Control the Pulse Delta low (between-pulse) level in A (strictly -0.105 … 0.105).""",
        validator=strict_number, values=[-MAX_CURRENT, MAX_CURRENT],
    )
    pulse_delta_width = Instrument.control(
        ":SOUR:PDEL:WIDT?", ":SOUR:PDEL:WIDT %g",
        """Control the pulse width in s (strictly 50e-6 … 12e-3).""",
        validator=strict_number, values=[50e-6, 12e-3],
    )
    pulse_delta_source_delay = Instrument.control(
        ":SOUR:PDEL:SDEL?", ":SOUR:PDEL:SDEL %g",
        """Control the delay from pulse start to the 2182A A/D in s (strictly 16e-6 … 11.966e-3).""",
        validator=strict_number, values=[16e-6, 11.966e-3],
    )
    pulse_delta_count = Instrument.control(
        ":SOUR:PDEL:COUN?", ":SOUR:PDEL:COUN %s",
        """Control the number of Pulse Delta readings (strictly 1 … 65636, or "INF").""",
        validator=joined_validators(strict_range, strict_discrete_set),
        values=([1, 65636], ["INF"]),
        set_process=_count_or_inf,
    )
    pulse_delta_ranging = Instrument.control(
        ":SOUR:PDEL:RANG?", ":SOUR:PDEL:RANG %s",
        """Control the output ranging for a fixed-output run: "best" or "fixed".""",
        validator=strict_discrete_set,
        values={"best": "BEST", "fixed": "FIX"}, map_values=True,
        get_process=lambda v: "FIX" if str(v).upper().startswith("FIX") else v,   # FIX or FIXED
    )
    pulse_delta_interval = Instrument.control(
        ":SOUR:PDEL:INT?", ":SOUR:PDEL:INT %d",
        """Control the pulse repetition interval in power-line cycles (strictly 5 … 999999).""",
        validator=strict_number, values=[5, 999999], cast=int,
    )
    pulse_delta_sweep = Instrument.control(
        ":SOUR:PDEL:SWE?", ":SOUR:PDEL:SWE %d",
        """Control whether the output sweeps (True) or is fixed (False).""",
        validator=strict_discrete_set, values={True: 1, False: 0}, map_values=True,
    )
    pulse_delta_low_measurements = Instrument.control(
        ":SOUR:PDEL:LME?", ":SOUR:PDEL:LME %d",
        """Control low measurements per cycle: 2 (3-point reading) or 1 (2-point).""",
        validator=strict_discrete_set, values=[1, 2], cast=int,
    )
    pulse_delta_connected = Instrument.measurement(
        ":SOUR:PDEL:NVPR?",
        """Get whether a 2182A answers on the 6221's RS-232 port (needed for Pulse Delta).""",
        cast=bool,
    )
    pulse_delta_armed = Instrument.measurement(
        ":SOUR:PDEL:ARM?",
        """Get whether Pulse Delta is armed.""",
        cast=bool,
    )
    delta_armed = Instrument.measurement(
        ":SOUR:DELT:ARM?",
        """Get whether Delta is armed.""",
        cast=bool,
    )

    # ----- sweeps and custom lists (scpi.md §2.1; Pulse Delta sweep output, §2.3) ---------------
    sweep_spacing = Instrument.control(
        ":SOUR:SWE:SPAC?", ":SOUR:SWE:SPAC %s",
        """Control the sweep spacing: "linear", "log" or "list" (a custom list, `sweep_list_*`).""",
        validator=strict_discrete_set,
        values={"linear": "LIN", "log": "LOG", "list": "LIST"}, map_values=True,
    )
    sweep_ranging = Instrument.control(
        ":SOUR:SWE:RANG?", ":SOUR:SWE:RANG %s",
        """Control the sweep ranging: "best" (one range for all points), "auto" (per point; the
        output drops to 0 during a range change) or "fixed".""",
        validator=strict_discrete_set,
        values={"auto": "AUTO", "best": "BEST", "fixed": "FIX"}, map_values=True,
        get_process=lambda v: "FIX" if str(v).upper().startswith("FIX") else v,
    )
    sweep_count = Instrument.control(
        ":SOUR:SWE:COUN?", ":SOUR:SWE:COUN %s",
        """Control how many times a sweep runs (strictly 1 … 9999, or "INF"). The same
        instrument setting as pymeasure's `delta_measurement_sets`.""",
        validator=joined_validators(strict_range, strict_discrete_set),
        values=([1, 9999], ["INF"]),
        set_process=_count_or_inf,
    )
    sweep_compliance_abort = Instrument.control(
        ":SOUR:SWE:CAB?", ":SOUR:SWE:CAB %d",
        """Control whether a sweep aborts on compliance.""",
        validator=strict_discrete_set, values={True: 1, False: 0}, map_values=True,
    )
    sweep_list_currents = Instrument.control(
        ":SOUR:LIST:CURR?", ":SOUR:LIST:CURR %s",
        f"""Control the custom-sweep current list in A (replaces it; each value strictly -0.105 …
        0.105, at most {LIST_CHUNK} values per message — longer lists go on with
        `sweep_list_currents_append`).""",
        validator=strict_number_list, values=[-MAX_CURRENT, MAX_CURRENT],
        set_process=_join_numbers, get_process=lambda v: [v],    # a one-point list stays a list
    )
    sweep_list_currents_append = Instrument.setting(
        ":SOUR:LIST:CURR:APP %s",
        f"""Append currents in A to the custom-sweep list (at most {LIST_CHUNK} per message).""",
        validator=strict_number_list, values=[-MAX_CURRENT, MAX_CURRENT],
        set_process=_join_numbers,
    )
    sweep_list_current_points = Instrument.measurement(
        ":SOUR:LIST:CURR:POIN?",
        """Get the number of points in the custom-sweep current list.""",
        cast=int,
    )
    sweep_list_delays = Instrument.control(
        ":SOUR:LIST:DEL?", ":SOUR:LIST:DEL %s",
        f"""Control the custom-sweep delay list in s (replaces it; strictly 1e-3 … 999999.999, the
        `SOUR:DEL` range; at most {LIST_CHUNK} values per message). In Pulse Delta sweep output
        each delay is that point's cycle time.""",
        validator=strict_number_list, values=DELAY_RANGE,
        set_process=_join_numbers, get_process=lambda v: [v],
    )
    sweep_list_delays_append = Instrument.setting(
        ":SOUR:LIST:DEL:APP %s",
        f"""Append delays in s to the custom-sweep list (at most {LIST_CHUNK} per message).""",
        validator=strict_number_list, values=DELAY_RANGE,
        set_process=_join_numbers,
    )
    sweep_list_delay_points = Instrument.measurement(
        ":SOUR:LIST:DEL:POIN?",
        """Get the number of points in the custom-sweep delay list.""",
        cast=int,
    )

    def set_sweep_list(self, currents, delays, compliances=None) -> None:
        """Load a custom list of any length: `currents` (A), `delays` (s) and, if given,
        `compliances` (V), point by point.

        Sent in chunks of at most LIST_CHUNK values (first a replacing command, then `:APP`);
        every value is checked before anything is written.
        """
        currents = strict_number_list(currents, [-MAX_CURRENT, MAX_CURRENT], chunk=None)
        delays = strict_number_list(delays, DELAY_RANGE, chunk=None)
        if len(currents) != len(delays):
            raise ValueError(f"{len(currents)} currents but {len(delays)} delays")
        lists = [("sweep_list_currents", currents), ("sweep_list_delays", delays)]
        if compliances is not None:
            compliances = strict_number_list(compliances, [0.1, 105], chunk=None)
            if len(compliances) != len(currents):
                raise ValueError(f"{len(currents)} currents but {len(compliances)} compliances")
            lists.append(("sweep_list_compliances", compliances))
        for name, values in lists:
            for i in range(0, len(values), LIST_CHUNK):
                setattr(self, name if i == 0 else name + "_append", values[i:i + LIST_CHUNK])

    def pulse_delta_arm(self) -> None:
        """Arm Pulse Delta (talks to the 2182A; un-arms Delta)."""
        self.write(":SOUR:PDEL:ARM")

    def pulse_delta_start(self) -> None:
        """Start the armed Pulse Delta run."""
        self.write(":INIT:IMM")

    def pulse_delta_abort(self) -> None:
        """Stop any armed sweep (Pulse Delta, Delta, DCON) and return the 2182A to local."""
        self.write(":SOUR:SWE:ABOR")

    def start_run(self, then: str = "") -> None:
        """Empty the buffer and start the armed run, in one message (never with the arm: arming
        takes time, UM 5-34, and an `:INIT:IMM` before it has finished is not a start); `then`
        (e.g. the first `:TRAC:POIN:ACT?` poll) rides on the same message."""
        self.write(":TRAC:CLE;:INIT:IMM" + (f";:{then.lstrip(':')}" if then else ""))

    sweep_list_compliances = Instrument.control(
        ":SOUR:LIST:COMP?", ":SOUR:LIST:COMP %s",
        f"""Control the custom-sweep compliance list in V (replaces it; strictly 0.1 … 105; at most
        {LIST_CHUNK} values per message).""",
        validator=strict_number_list, values=[0.1, 105],
        set_process=_join_numbers, get_process=lambda v: [v],
    )
    sweep_list_compliances_append = Instrument.setting(
        ":SOUR:LIST:COMP:APP %s",
        f"""Append compliances in V to the custom-sweep list (at most {LIST_CHUNK} per message).""",
        validator=strict_number_list, values=[0.1, 105],
        set_process=_join_numbers,
    )

    def device_clear(self) -> None:
        """VISA device clear (viClear; GPIB SDC): the instrument drops replies not yet read, so a
        late reply cannot be taken for the answer to the next query. Not pymeasure's `clear()`,
        which sends `*CLS`."""
        conn = getattr(self.adapter, "connection", None)
        if conn is not None and callable(getattr(conn, "clear", None)):
            conn.clear()

    # ----- buffer / trace (scpi.md §2.6) ----------------------------------------------------
    trace_points_actual = Instrument.measurement(
        ":TRAC:POIN:ACT?",
        """Get the number of readings stored in the buffer.""",
        cast=int,
    )
    format_elements = Instrument.control(
        ":FORM:ELEM?", ":FORM:ELEM %s",
        """Control the buffer elements, e.g. "READ,TST" (the default).""",
        get_process_list=lambda v: ",".join(str(x) for x in v),
        cast=str,
    )

    def trace_clear(self) -> None:
        """Empty the reading buffer."""
        self.write(":TRAC:CLE")

    def serial_send(self, command: str) -> None:
        """Send one command to the attached 2182A through the 6221's RS-232 port."""
        if '"' in command:
            raise ValueError("a 2182A pass-through command cannot contain a double quote")
        self.write(f':SYST:COMM:SER:SEND "{command}"')

    def serial_ask(self, query: str) -> str:
        """Ask the attached 2182A through the RS-232 link: `SER:SEND` the query, `SER:ENT?` the
        reply (scpi.md §2.8)."""
        self.serial_send(query)
        return str(self.ask(":SYST:COMM:SER:ENT?")).strip()

    # ----- shutdown -------------------------------------------------------------------------
    def shutdown(self, ramp_steps: int = 10, ramp_pause: float = 0.002) -> None:
        """Abort armed sweeps, ramp the DC level to zero in steps, output off; never raises.

        Each stage is tried on its own so that a failure in one (a timeout, a disconnect)
        still lets the next one run; failures are logged, not raised.
        """
        log.info("Shutting down %s.", self.name)
        for what, action in (("abort sweeps", self.pulse_delta_abort),
                             ("clear the device", self.device_clear),
                             ("ramp to zero", lambda: self._ramp_to_zero(ramp_steps, ramp_pause)),
                             ("output off", self.disable_source)):
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - shutdown must not raise
                log.error("%s: shutdown could not %s: %s", self.name, what, exc)
        self.isShutdown = True

    def _ramp_to_zero(self, steps: int, pause: float) -> None:
        level = float(self.source_current)
        if not np.isfinite(level) or level == 0.0:
            self.source_current = 0.0
            return
        for value in np.linspace(level, 0.0, max(int(steps), 1) + 1)[1:]:
            self.source_current = float(value)
            if pause > 0:
                time.sleep(pause)
