"""What the 2400/2450 SourceMeter roles need beyond pymeasure 0.16, per model.

The roles drive pymeasure's `Keithley2400` / `Keithley2450` and use their properties where they
exist (`source_mode`, `compliance_voltage`, `source_current`, `source_current_range`,
`voltage_nplc`, `enable_source`, the 2400's `wires`, the 2450's `voltage` = `:READ?`,
`ramp_to_current`). What pymeasure lacks is written here, once per model (`SourceMeterModel`):

- remote (4-wire) sense of the *voltage* function. Both models power up in 2-wire sense and then
  measure at their FORCE terminals, i.e. the channel, not the Hall cross (2400 UM 18-112
  `:SYST:RSEN`; 2450 RM `:SENS:VOLT:RSEN`). pymeasure's 2450 `wires` sets `:SENS:RES:RSEN`, the
  resistance function only, so a voltage reading would stay 2-wire (tests/test_fidelity_smu_lockin
  shows it); the 2450 uses `:SENS:VOLT:RSEN` here.
- over-voltage protection `:SOUR:VOLT:PROT` (2400 UM 18-81: 20 … 160 V or NONE, a value between
  levels selects the lower, below 20 V selects 20 V; 2450: PROT2 … PROT180, NONE). In 4-wire the
  compliance (`:SENS:VOLT:PROT` / `VLIM`) watches the *sensed* Hall voltage, so OVP is what still
  limits the voltage across the channel during a read.
- compliance witnesses: the 2400 latches "in compliance" (bit 14) and "OVP limiting" (bit 13) in
  its measurement event register (`:STAT:MEAS?`, read = clear; UM 15-14), so one query after a
  pulse or read covers all of it; the 2450's `:SOUR:CURR:VLIM:TRIP?` and
  `:SOUR:VOLT:PROT:TRIP?` report the present state only, so they are asked while the output is on.
- the 2450's command set (`*LANG?`, RM B-5): in TSP mode it understands no SCPI.

`source_current_setup` and `shutdown_sourcemeter` are what the pulse source and the Hall reader
both do with it.
"""
from __future__ import annotations

from typing import Any

from labspin.errors import UserError

from .common import forget_settings, instrument_address, safely, set_if_changed
from .roles import Limits

COMPLIANCE_EVENT, OVP_EVENT = 1 << 14, 1 << 13          # 2400 measurement event register
OVP_2450 = (2, 5, 10, 20, 40, 60, 80, 100, 120, 140, 160, 180)    # V, PROTn levels


def _address(smu: Any) -> str:
    conn = getattr(getattr(smu, "adapter", None), "connection", None)
    name = getattr(conn, "resource_name", None)
    return name if isinstance(name, str) else type(smu).__name__


class SourceMeterModel:
    """The model-specific commands for one pymeasure 2400 or 2450 instance."""

    def __init__(self, smu: Any) -> None:
        from pymeasure.instruments.keithley import Keithley2400, Keithley2450

        if isinstance(smu, Keithley2450):
            self.model = "2450"
        elif isinstance(smu, Keithley2400):
            self.model = "2400"
        else:
            raise TypeError(f"a SourceMeter role needs a pymeasure Keithley2400 or Keithley2450, "
                            f"not {type(smu).__name__}")
        self.smu = smu
        self.address = _address(smu)

    # ---- set-up ------------------------------------------------------------------------------
    def check_language(self) -> None:
        """UserError unless a 2450 speaks its SCPI command set (the 2400 has only one)."""
        if self.model != "2450":
            return
        try:
            lang = str(self.smu.ask("*LANG?")).strip().upper()
        except Exception as exc:  # noqa: BLE001 - reported as the reason
            raise UserError(f"{self.address}: the 2450 does not answer *LANG?: {exc}") from None
        if lang != "SCPI":
            raise UserError(
                f"{self.address}: the 2450 uses the {lang} command set, labspin needs SCPI: on its "
                f"front panel choose MENU > System > Settings > Command Set > SCPI (or send "
                f"'*LANG SCPI'), then restart the instrument")

    def set_four_wire(self, on: bool, cache: dict) -> None:
        """Remote sense of the voltage function on/off when it changes. The first turn to 4-wire
        of a cache generation is read back (2-wire is the power-up state and needs no proof);
        the pulse and read roles then toggle it without asking again."""
        key = "_four_wire"
        if cache.get(key) == on:
            return
        cache.pop(key, None)
        smu = self.smu
        verify = on and not cache.get("_four_wire_verified")
        if self.model == "2400":
            smu.wires = 4 if on else 2                       # pymeasure: :SYSTEM:RSENSE
            got = verify and smu.wires == 4
        else:
            smu.write(f":SENS:VOLT:RSEN {1 if on else 0}")
            got = verify and str(smu.ask(":SENS:VOLT:RSEN?")).strip() in ("1", "ON")
        if verify:
            if not got:
                raise RuntimeError(f"{self.address}: remote sense did not turn on (read back "
                                   f"2-wire): the Hall voltage cannot be read")
            cache["_four_wire_verified"] = True
        cache[key] = on

    def set_overvoltage_protection(self, limits: Limits, cache: dict) -> None:
        """OVP at the compliance voltage (the instrument's nearest level at or below it; the
        2400's lowest level is 20 V, the 2450's 2 V)."""
        cv = abs(limits.compliance_voltage)
        if self.model == "2400":
            cmd = f":SOUR:VOLT:PROT {cv:g}"
        else:
            level = max([v for v in OVP_2450 if v <= cv] or [OVP_2450[0]])
            cmd = f":SOUR:VOLT:PROT PROT{level}"
        if cache.get("_ovp") != cmd:
            cache.pop("_ovp", None)
            self.smu.write(cmd)
            cache["_ovp"] = cmd

    def clear_compliance(self, cache: dict) -> None:
        """Forget compliance events from before this cache generation (2400: read = clear)."""
        if self.model == "2400" and not cache.get("_meas_cleared"):
            self.smu.ask(":STAT:MEAS?")
            cache["_meas_cleared"] = True

    # ---- compliance ----------------------------------------------------------------------
    def tripped_while_on(self) -> bool:
        """2450, output on: is it limiting now (VLIM or OVP)? The 2400 answers False here."""
        if self.model != "2450":
            return False
        reply = str(self.smu.ask(":SOUR:CURR:VLIM:TRIP?;:SOUR:VOLT:PROT:TRIP?"))
        return any(x.strip() in ("1", "ON") for x in reply.replace(",", ";").split(";"))

    def tripped_since(self) -> bool:
        """2400: did compliance or OVP limit the source since the last check (latched)?
        The 2450 answers False here (see `tripped_while_on`)."""
        if self.model != "2400":
            return False
        return bool(int(float(self.smu.ask(":STAT:MEAS?"))) & (COMPLIANCE_EVENT | OVP_EVENT))

    # ---- reading -------------------------------------------------------------------------
    def read_voltage(self) -> float:
        """One voltage reading with the present settings, output as it is."""
        if self.model == "2450":
            return float(self.smu.voltage)                   # pymeasure: :READ? (one value)
        # pymeasure's 2400 `voltage` asks :MEAS:VOLT?, which re-configures the instrument
        # (auto range, output on; scpi.md §6.1): a plain :READ? keeps our settings.
        reply = str(self.smu.ask(":READ?"))
        return float(reply.replace(";", ",").split(",")[0])  # V,I,R,TIME,STATUS


# ----- what both SourceMeter roles do ---------------------------------------------------------
def source_current_setup(smu: Any, model: SourceMeterModel, limits: Limits, cache: dict, *, four_wire: bool,
                         current_range: float) -> None:
    """A SourceMeter sourcing current, as a pulse source (2-wire: the compliance guards the
    channel) or a Hall reader (4-wire: SENSE on the cross); OVP at the compliance voltage either way."""
    set_if_changed(smu, "source_mode", "current", cache)
    model.set_four_wire(four_wire, cache)
    set_if_changed(smu, "compliance_voltage", limits.compliance_voltage, cache)
    model.set_overvoltage_protection(limits, cache)
    set_if_changed(smu, "source_current_range", current_range, cache)


def shutdown_sourcemeter(smu: Any, steps: int = 10) -> None:
    """Ramp a 2400/2450 current to zero and turn its output off; never raises."""
    forget_settings(smu)
    name = instrument_address(smu)

    def ramp() -> None:
        try:
            smu.ramp_to_current(0.0, steps=steps, pause=0.0)      # pymeasure: level … 0 in steps
        except Exception:  # noqa: BLE001 - a level it cannot ramp from: go straight to zero
            smu.source_current = 0.0

    safely("ramp to zero", ramp, name)
    safely("turn the output off", smu.disable_source, name)
