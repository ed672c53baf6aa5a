"""Simulated Keithley 6221 current source with the 2182A attached (scpi.md §2, §7.A–C, §8.1).

Modes: DC output (``OUTP``, ``SOUR:CURR``, compliance), Pulse Delta (``SOUR:PDEL:*``: each cycle a
pulse of HIGH for WIDT is delivered to the Hall bar and the 2182A forms (2B − A − C)/2, or B − A
with ``LME 1``), Delta (``SOUR:DELT:*``: alternating HIGH/LOW, reading ((X − 2Y + Z)/4)·(−1)^n,
so the thermal EMF cancels), and the sine waveform (``SOUR:WAVE:*``) that an external-reference
lock-in reads. Pulse Delta *sweep output with a custom list* (``PDEL:SWE ON``, ``SWE:SPAC LIST``,
``SOUR:LIST:CURR``/``SOUR:LIST:DEL``): each cycle takes the next list current as its high level
and the matching list delay (or ``SOUR:DEL``) as its cycle time, ``SWE:COUN`` times over, one
reading per pulse. Finite Pulse-Delta and Delta runs execute at ``INIT:IMM`` in virtual time (the
clock jumps by COUN × cycle); with ``COUN INF`` readings are produced on demand as time passes.

As strict as the real instrument (issue #12), with the manual's words where it has them:

- Cycle timing. Fixed output: a cycle lasts ``PDEL:INT`` power-line cycles, 5 … 999999 PLC
  (UM 5-28; RM 5-39: 5 PLC = 100 ms at 50 Hz, 83.3 ms at 60 Hz). Sweep output: the cycle time is
  ``SOUR:DEL`` (``SOUR:LIST:DEL`` per point for a custom list; RM 5-39, UM 5-34), and "like the
  Fixed output, a Sweep output is synchronized to the frequency of the power line" (UM 5-22/5-23).
  The pages we could read do not give the shortest sweep cycle nor say what a delay that is not a
  whole number of line cycles does; we model (U) that every cycle starts on a line cycle, so a
  delay is rounded up to whole line periods, and that a sweep cycle is never shorter than the
  fixed-output minimum of 5 PLC (both hold the same low/high/low pulses and 2182A A/Ds). So a
  1 ms delay gives 100 ms cycles at 50 Hz. The line frequency is the bench's (``SYST:LFR``).
- Arming. ``PDEL:ARM`` / ``DELT:ARM`` talk to the 2182A over RS-232 (UM 5-34), which takes time:
  ``ARM?`` answers 1 only ``ARM_TIME`` after the arm (virtual clock; the duration is U). An
  ``INIT:IMM`` before that is refused with −221 and ignored (U: the manual only says the run
  starts "when armed"). Changing a setting of the armed run (Pulse Delta or Delta settings, and the
  sweep / list / ``SOUR:DEL`` settings both use) is refused with −221 (U; otherwise a change would
  silently miss the armed run): ``SOUR:SWE:ABOR`` first.
  A finished finite run stays armed: another ``INIT:IMM`` re-starts it, and its readings overwrite
  the buffer (UM 5-41).
- ``TRAC:DATA?`` on an empty buffer: error −230 and no reply (the reader times out).
- ``SOUR:SWE:CAB ON``: a Pulse Delta sweep stops at the first cycle that reaches compliance
  (that cycle stores no reading; operation event bit 2, sweep aborted).
- ``SOUR:LIST:COMP``: a per-point compliance list for custom sweeps; a point beyond its end uses
  ``SOUR:CURR:COMP`` (U).
"""
from __future__ import annotations

import math

from ..scpi import CommandTable, unquote
from .errors import err
from .keithley import KeithleyInstrument
from .params import Bool, Enum, Int, Num, nr3

PDEL_ADC_NOISE = 50e-9   # V rms of one 2182A A/D inside a Pulse-Delta cycle
LIST_MAX_POINTS = 65535  # custom-list length; the reference is silent, SOUR:SWE:POIN allows 65535 (U)
ARM_TIME = 0.1           # s from PDEL:ARM / DELT:ARM to ARM? = 1 (the 6221 configures the 2182A) (U)
PDEL_MIN_PLC = 5         # shortest Pulse Delta cycle, in line cycles (UM 5-28; sweep output: U)
_ELEMENTS = ("READ", "TST", "RNUM", "SOUR", "COMP", "AVOL", "UNIT")


class Keithley6221(KeithleyInstrument):
    model = "6221"
    idn = "KEITHLEY INSTRUMENTS INC.,MODEL 6221,4321987,D04  /700x"
    sources_current = True

    @classmethod
    def _commands(cls, t: CommandTable) -> None:
        super()._commands(t)
        S = cls.setting
        # guards: a setting of an armed run is refused with -221 until SOUR:SWE:ABOR
        sw, pd, dt = "_sweep_guard", "_pdel_guard", "_delt_guard"
        amps = Num(-0.105, 0.105)
        S(t, "[:SOURce]:CURRent[:LEVel][:IMMediate][:AMPLitude]", "level", amps, 0.0, hook="_dc_changed")
        S(t, "[:SOURce]:CURRent:COMPliance", "comp", Num(0.1, 105), 10.0, hook="_dc_changed")
        S(t, "[:SOURce]:CURRent:RANGe", "range", Num(-0.105, 0.105), 0.1, hook="_range_set")
        S(t, "[:SOURce]:CURRent:RANGe:AUTO", "range_auto", Bool(), False)
        S(t, "[:SOURce]:CURRent:FILTer", "filter", Bool(), False)
        S(t, "[:SOURce]:DELay", "delay", Num(1e-3, 999999.999), 1e-3, guard=sw)
        S(t, ":OUTPut[:STATe]", "outp", Bool(), False, hook="_dc_changed")
        S(t, ":OUTPut:LTEarth", "lte", Bool(), False)
        S(t, ":OUTPut:ISHield", "ishield", Enum("OLOW", "GUARd"), "OLOW")
        S(t, ":OUTPut:RESPonse", "response", Enum("FAST", "SLOW"), "FAST")
        t.add(":OUTPut:INTerlock:TRIPped", query=lambda i, p, s: "1")
        t.add("[:SOURce]:CLEar[:IMMediate]", set=lambda i, p, s: i.source_clear())
        # sweeps and trigger model (stored; Pulse Delta / Delta use them)
        S(t, "[:SOURce]:SWEep:COUNt", "swe_count", Int(1, 9999, inf=True), 1, guard=sw)
        S(t, "[:SOURce]:SWEep:SPACing", "swe_spacing", Enum("LINear", "LOGarithmic", "LIST"), "LIN",
          guard=sw)
        S(t, "[:SOURce]:SWEep:POINts", "swe_points", Int(1, 65535), 11, guard=sw)
        S(t, "[:SOURce]:SWEep:RANGing", "swe_ranging", Enum("AUTO", "BEST", "FIXed"), "BEST", guard=sw)
        S(t, "[:SOURce]:SWEep:CABort", "swe_cab", Bool(), False, guard=sw)
        t.add("[:SOURce]:SWEep:ARM", set=lambda i, p, s: None)
        t.add("[:SOURce]:SWEep:ABORt", set=lambda i, p, s: i.abort_sweep())
        for k in ("STARt", "STOP", "CENTer"):
            S(t, f"[:SOURce]:CURRent:{k}", "curr_" + k[:4].lower(), amps, 0.0)
        S(t, "[:SOURce]:CURRent:STEP", "curr_step", Num(1e-13, 0.105), 1e-3)
        S(t, "[:SOURce]:CURRent:SPAN", "curr_span", Num(2e-13, 0.210), 1e-3)
        S(t, ":ARM:SOURce", "arm_source", Enum("IMMediate", "TIMer", "BUS", "TLINk", "BSTest",
                                               "PSTest", "NSTest", "MANual"), "IMM")
        S(t, ":ARM:TIMer", "arm_timer", Num(0, 99999.99), 0.1)
        S(t, ":ARM:DIRection", "arm_dir", Enum("SOURce", "ACCeptor"), "ACC")
        S(t, ":TRIGger:DIRection", "trig_dir", Enum("SOURce", "ACCeptor"), "ACC")
        for k in ("ARM", "TRIGger"):
            S(t, f":{k}:ILINe", k[:3].lower() + "_iline", Int(1, 6), 1)
            S(t, f":{k}:OLINe", k[:3].lower() + "_oline", Int(1, 6), 2)
        S(t, ":ARM:OUTPut", "arm_output", Enum("TENTer", "TEXit", "NONE"), "NONE")
        S(t, ":TRIGger:SOURce", "trig_source", Enum("IMMediate", "TLINk"), "IMM")
        S(t, ":TRIGger:OUTPut", "trig_output", Enum("SOURce", "DELay", "NONE"), "NONE")
        t.add(":INITiate[:IMMediate]", set=lambda i, p, s: i.initiate())
        t.add(":ABORt", set=lambda i, p, s: i.abort_sweep())
        # Pulse Delta
        S(t, "[:SOURce]:PDELta:HIGH", "pdel_high", amps, 1e-3, guard=pd)
        S(t, "[:SOURce]:PDELta:LOW", "pdel_low", amps, 0.0, guard=pd)
        S(t, "[:SOURce]:PDELta:WIDTh", "pdel_width", Num(50e-6, 12e-3), 110e-6, guard=pd)
        S(t, "[:SOURce]:PDELta:SDELay", "pdel_sdelay", Num(16e-6, 11.966e-3), 16e-6, guard=pd)
        S(t, "[:SOURce]:PDELta:COUNt", "pdel_count", Int(1, 65636, inf=True), math.inf, guard=pd)
        S(t, "[:SOURce]:PDELta:RANGing", "pdel_ranging", Enum("BEST", "FIXed"), "BEST", guard=pd)
        S(t, "[:SOURce]:PDELta:INTerval", "pdel_interval", Int(5, 999999), 5, guard=pd)
        S(t, "[:SOURce]:PDELta:SWEep[:STATe]", "pdel_sweep", Bool(), False, guard=pd)
        S(t, "[:SOURce]:PDELta:LMEasure", "pdel_lme", Int(1, 2), 2, guard=pd)
        # Custom sweep lists (scpi.md §2.1 "custom lists SOUR:LIST:CURR|DEL|COMP <v,...>, …:APP,
        # …:POIN?"). The reference gives no point limit nor a range for the delays: we take the
        # SOUR:SWE:POIN limit (65535) and the SOUR:DEL range (1 ms … 999999.999 s) — U.
        L = cls.list_setting
        L(t, "[:SOURce]:LIST:CURRent", "list_curr", amps, LIST_MAX_POINTS, guard=sw)
        L(t, "[:SOURce]:LIST:DELay", "list_del", Num(1e-3, 999999.999), LIST_MAX_POINTS, guard=sw)
        L(t, "[:SOURce]:LIST:COMPliance", "list_comp", Num(0.1, 105), LIST_MAX_POINTS, guard=sw)
        t.add("[:SOURce]:PDELta:ARM", set=lambda i, p, s: i.arm("PDEL"),
              query=lambda i, p, s: i.armed_state("PDEL"))
        t.add("[:SOURce]:PDELta:NVPResent", query=lambda i, p, s: i.nvpresent())
        # Delta
        S(t, "[:SOURce]:DELTa:HIGH", "delt_high", Num(0, 0.105), 1e-3, hook="_delta_high_set",
          guard=dt)
        S(t, "[:SOURce]:DELTa:LOW", "delt_low", Num(-0.105, 0), -1e-3, guard=dt)
        S(t, "[:SOURce]:DELTa:DELay", "delt_delay", Num(1e-3, 9999.999), 2e-3, guard=dt)
        S(t, "[:SOURce]:DELTa:COUNt", "delt_count", Int(1, 65536, inf=True), math.inf, guard=dt)
        S(t, "[:SOURce]:DELTa:CABort", "delt_cab", Bool(), False, guard=dt)
        S(t, "[:SOURce]:DELTa:CSWitch", "delt_csw", Bool(), False, guard=dt)
        t.add("[:SOURce]:DELTa:ARM", set=lambda i, p, s: i.arm("DELT"),
              query=lambda i, p, s: i.armed_state("DELT"))
        t.add("[:SOURce]:DELTa:NVPResent", query=lambda i, p, s: i.nvpresent())
        # Waveform
        S(t, "[:SOURce]:WAVE:FUNCtion", "wave_func",
          Enum("SINusoid", "SQUare", "RAMP", "ARB0", "ARB1", "ARB2", "ARB3", "ARB4"), "SIN")
        S(t, "[:SOURce]:WAVE:FREQuency", "wave_freq", Num(1e-3, 1e5), 1e3, hook="_wave_changed")
        S(t, "[:SOURce]:WAVE:AMPLitude", "wave_ampl", Num(2e-12, 0.105), 2e-12, hook="_wave_changed")
        S(t, "[:SOURce]:WAVE:OFFSet", "wave_offs", amps, 0.0, hook="_wave_changed")
        S(t, "[:SOURce]:WAVE:DCYCle", "wave_dcyc", Num(0, 100), 50.0)
        S(t, "[:SOURce]:WAVE:RANGing", "wave_ranging", Enum("BEST", "FIXed"), "BEST")
        S(t, "[:SOURce]:WAVE:DURation:TIME", "wave_dur_time", Num(100e-9, 999999.999, inf=True), math.inf)
        S(t, "[:SOURce]:WAVE:DURation:CYCLes", "wave_dur_cycles", Num(1e-3, 99999999900, inf=True),
          math.inf, hook="_wave_cycles_set")
        S(t, "[:SOURce]:WAVE:PMARker[:LEVel]", "wave_pmar", Num(0, 360), 0.0, hook="_wave_changed")
        S(t, "[:SOURce]:WAVE:PMARker:OLINe", "wave_pmar_line", Int(1, 6), 3)
        S(t, "[:SOURce]:WAVE:PMARker:STATe", "wave_pmar_state", Bool(), False, hook="_wave_changed")
        S(t, "[:SOURce]:WAVE:EXTRigger[:ENABle]", "wave_extr", Bool(), False)
        S(t, "[:SOURce]:WAVE:EXTRigger:ILINe", "wave_extr_line", Int(0, 6), 1)
        S(t, "[:SOURce]:WAVE:EXTRigger:IGNore", "wave_extr_ign", Bool(), True)
        S(t, "[:SOURce]:WAVE:EXTRigger:IVALue", "wave_extr_ival", Num(-1, 1), 0.0)
        t.add("[:SOURce]:WAVE:ARB:DATA", set=lambda i, p, s: i._arb(p, append=False))
        t.add("[:SOURce]:WAVE:ARB:APPend", set=lambda i, p, s: i._arb(p, append=True))
        t.add("[:SOURce]:WAVE:ARB:POINts", query=lambda i, p, s: str(len(i._arb_data)))
        t.add("[:SOURce]:WAVE:ARB:COPY", set=lambda i, p, s: None)
        t.add("[:SOURce]:WAVE:ARM", set=lambda i, p, s: i.arm("WAVE"),
              query=lambda i, p, s: "1" if i.armed == "WAVE" else "0")
        t.add("[:SOURce]:WAVE:INITiate", set=lambda i, p, s: i.wave_start())
        t.add("[:SOURce]:WAVE:ABORt", set=lambda i, p, s: i.wave_abort())
        # Units, buffer, format, data
        S(t, ":UNIT[:VOLTage][:DC]", "unit", Enum("V", "OHMS", "W", "SIEMens"), "V")
        S(t, ":UNIT:POWer[:TYPE]", "unit_power", Enum("PEAK", "AVERage"), "PEAK")
        S(t, ":TRACe:POINts", "trac_points", Int(1, 65536), 100)
        t.add(":TRACe:POINts:ACTual", query=lambda i, p, s: str(len(i.buffer)))
        t.add(":TRACe:CLEar", set=lambda i, p, s: i.buffer_clear())
        t.add(":TRACe:FREE", query=lambda i, p, s: f"{8 * (i.s['trac_points'] - len(i.buffer))},{8 * len(i.buffer)}")
        S(t, ":TRACe:NOTify", "trac_notify", Int(1, 65535), 1)
        S(t, ":TRACe:FEED", "trac_feed", Enum("SENSe", "SENSe1", "CALCulate", "CALCulate1", "NONE"), "SENS")
        S(t, ":TRACe:FEED:CONTrol", "trac_feed_cont", Enum("NEXT", "NEVer"), "NEXT")
        S(t, ":TRACe:TSTamp:FORMat", "trac_tst", Enum("ABSolute", "DELTa"), "ABS")
        t.add(":TRACe:DATA", query=lambda i, p, s: i.trace_data(0, None))
        t.add(":TRACe:DATA:SELected", query=lambda i, p, s: i._trace_sel(p))
        t.add(":TRACe:DATA:TYPE", query=lambda i, p, s: i._data_type)
        t.add(":FORMat:ELEMents", set=lambda i, p, s: i._form_elem(p),
              query=lambda i, p, s: ",".join(i.elements))
        t.add("[:SENSe]:DATA[:LATest]", query=lambda i, p, s: i.sense_data(fresh=False))
        t.add("[:SENSe]:DATA:FRESh", query=lambda i, p, s: i.sense_data(fresh=True))
        t.add(":SYSTem:COMMunicate:SERial:SEND", set=lambda i, p, s: i._serial_send(p))
        t.add(":SYSTem:COMMunicate:SERial:ENTer", query=lambda i, p, s: i._serial_enter())
        S(t, ":SYSTem:COMMunicate:SERial:BAUD", "ser_baud", Int(300, 19200), 19200)

    def __init__(self, bench, address):
        self.armed: str | None = None
        self.running = False
        self.buffer: list[tuple[float, float, int, float]] = []  # (reading, time, rnum, source)
        self.elements = ["READ", "TST"]
        self._data_type = "NONE"
        self._arb_data: list[float] = []
        self._serial_reply: str | None = None
        self._armed_at = 0.0
        self._comp_now: float | None = None
        self._wave_on = False
        self._wave_t0 = 0.0
        self._tripped = False
        self._last_read_index = -1
        self._fresh_index = -1
        self._inf_next = 0.0
        self._delta_v: list[float] = []
        self._cycle_no = 0
        self._list_i = 0
        super().__init__(bench, address)

    # ---- reset / DC output ---------------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        self.armed = None
        self.running = False
        self._wave_on = False
        self.elements = ["READ", "TST"]
        if hasattr(self, "bench"):
            self._dc_changed()
            self.bench._notify()

    def source_clear(self) -> None:
        self.s["outp"] = False
        self.s["level"] = 0.0
        self._dc_changed()

    def _range_set(self) -> None:
        self.s["range_auto"] = False

    def _dc_changed(self) -> None:
        if self.armed in ("PDEL", "DELT"):
            return  # the armed sweep owns the output; DC settings apply after SWE:ABOR
        dc = self.s["wave_offs"] if self._wave_on else self.s["level"]
        self._set_output(bool(self.s["outp"]) or self._wave_on, dc)

    def actual_current(self) -> float:
        return self.comply(self.level)

    def comply(self, current: float) -> float:
        """The current that really flows: clamped at compliance / R_xx; forced trips give 0."""
        if current == 0.0:
            return 0.0
        if self.consume_compliance_fault():
            self._trip()
            return 0.0
        rxx = self.bench.hallbar.longitudinal_resistance
        comp = self.s["comp"] if self._comp_now is None else self._comp_now
        if abs(current) * rxx > comp:
            self._trip()
            return math.copysign(comp / rxx, current)
        self._tripped = False
        return current

    def _trip(self) -> None:
        self._tripped = True
        self.event["meas"] |= 1 << 3

    def condition(self, k: str) -> int:
        if k == "meas":
            return (1 << 3) if self._tripped else 0
        if k == "oper":
            return (1 << 3) if self.running and self._infinite() else 0
        return 0

    # ---- 2182A link ----------------------------------------------------------------------
    @property
    def nvm(self):
        """The 2182A on the RS-232 link (None when the bench has none)."""
        try:
            return self._nvm
        except AttributeError:
            addr = self.bench.addresses.get("keithley2182")
            self._nvm = self.bench.instrument(addr) if addr else None
            return self._nvm

    def nvpresent(self) -> str:
        return "1" if self.nvm is not None and not self.nvm._disconnected else "0"

    def _serial_send(self, p: list[str]) -> None:
        nvm = self.nvm
        if nvm is None or not p:
            raise err(-221)
        replies = nvm.execute(unquote(",".join(p)))
        if replies:
            self._serial_reply = replies[-1]

    def _serial_enter(self) -> str:
        """``SER:ENT?``: the 2182A's reply to the last query sent through the link, once (U)."""
        reply, self._serial_reply = self._serial_reply, None
        if reply is None:
            raise err(-230)
        return reply

    # ---- arming and running --------------------------------------------------------------
    def arm(self, mode: str) -> None:
        if mode in ("PDEL", "DELT") and self.nvpresent() != "1":
            raise err(-221)
        if mode == "PDEL" and self._pdel_list():
            # A custom sweep needs a current list, and a delay list that is either empty (then
            # SOUR:DEL times every cycle) or as long as the current list. The reference only says
            # "cycle time = SOUR:LIST:DEL for custom"; what a real 6221 does with an empty or a
            # mismatched delay list is not documented there: we refuse at arm with -221 (U).
            n_curr, n_del = len(self.s["list_curr"]), len(self.s["list_del"])
            if n_curr == 0 or n_del not in (0, n_curr):
                raise err(-221)
        if self.running:
            self.abort_sweep()
        self.armed = mode
        self._armed_at = self.clock.now + (ARM_TIME if mode in ("PDEL", "DELT") else 0.0)
        self._data_type = {"PDEL": "PULS", "DELT": "DELT", "WAVE": self._data_type}[mode]
        if mode == "PDEL":
            self._set_output(True, self.s["pdel_low"])
        elif mode == "DELT":
            self._set_output(True, 0.0)

    def armed_state(self, mode: str) -> str:
        """``…:ARM?``: 1 once arming (talking to the 2182A) has finished."""
        return "1" if self.armed == mode and self.clock.now >= self._armed_at else "0"

    def _sweep_guard(self) -> None:
        """Sweep and list settings (used by both runs) are refused while a run is armed (−221)."""
        if self.armed in ("PDEL", "DELT"):
            raise err(-221)

    def _pdel_guard(self) -> None:
        """Pulse Delta settings are refused while Pulse Delta is armed (−221)."""
        if self.armed == "PDEL":
            raise err(-221)

    def _delt_guard(self) -> None:
        """Delta settings are refused while Delta is armed (−221)."""
        if self.armed == "DELT":
            raise err(-221)

    def initiate(self) -> None:
        if self.armed in ("PDEL", "DELT"):
            if self.clock.now < self._armed_at:
                raise err(-221)          # not armed yet: ignored
            self.buffer_clear()          # a new run overwrites the buffer (UM 5-41)
        if self.armed == "PDEL" and self._pdel_list():
            self._start_run()
            if self.s["swe_count"] != math.inf:
                currents = self.s["list_curr"]
                periods = self._list_periods()
                comps = self.s["list_comp"]
                for _ in range(self._sets()):
                    for i, (high, period) in enumerate(zip(currents, periods)):
                        self._comp_now = comps[i] if i < len(comps) else None
                        self._pdel_cycle(high, period)
                        if not self.running:
                            break
                    if not self.running:
                        break
                self._comp_now = None
                if self.running:
                    self._sweep_done()
        elif self.armed == "PDEL":
            self._start_run()
            n = self.s["pdel_count"]
            if n != math.inf:
                for _ in range(int(n) * self._sets()):
                    self._pdel_cycle()
                self._sweep_done()
        elif self.armed == "DELT":
            self._start_run()
            if not self._infinite():
                total = int(self.s["delt_count"]) * self._sets()
                while self.running and self._delta_readings < total:
                    self._delta_step(total)
                self._sweep_done()

    def _sets(self) -> int:
        n = self.s["swe_count"]
        return 1 if n == math.inf else int(n)

    def _infinite(self) -> bool:
        if self.armed == "PDEL" and self._pdel_list():
            return self.s["swe_count"] == math.inf      # the list length sets the points
        key = "pdel_count" if self.armed == "PDEL" else "delt_count"
        return self.s[key] == math.inf or self.s["swe_count"] == math.inf

    def _start_run(self) -> None:
        self.running = True
        self._cycle_no = 0
        self._delta_v = []
        self._delta_readings = 0
        self._delta_i = 0
        self._inf_next = self.clock.now
        self._list_i = 0
        self.event["oper"] |= 1 << 3

    def _sweep_done(self) -> None:
        self.event["oper"] |= 1 << 1
        if self.armed == "DELT":
            self._set_output(True, 0.0)

    def abort_sweep(self) -> None:
        was = self.running or self.armed in ("PDEL", "DELT")
        self.running = False
        if self.armed in ("PDEL", "DELT"):
            self.armed = None
        if was:
            self.event["oper"] |= 1 << 2
            self._dc_changed()

    def _catch_up(self) -> None:
        """Infinite runs: produce the cycles whose time has come (at least one per query)."""
        if not (self.running and self._infinite()):
            return
        if self.armed == "PDEL" and self._pdel_list():
            currents, periods = self.s["list_curr"], self._list_periods()
            period = sum(periods) / len(periods)
            n = max(1, int((self.clock.now - self._inf_next) / period))
            for _ in range(min(n, 65536)):
                i = self._list_i % len(currents)
                self._pdel_cycle(currents[i], periods[i])
                self._list_i += 1
            self._inf_next = self.clock.now
        elif self.armed == "PDEL":
            period = self._pdel_period()
            n = max(1, int((self.clock.now - self._inf_next) / period))
            for _ in range(min(n, 65536)):
                self._pdel_cycle()
            self._inf_next = self.clock.now
        elif self.armed == "DELT":
            step = self.s["delt_delay"] + self._nvm_aperture()
            n = max(1, int((self.clock.now - self._inf_next) / step))
            for _ in range(min(n, 65536)):
                self._delta_step(None)
            self._inf_next = self.clock.now

    # ---- Pulse Delta ---------------------------------------------------------------------
    def _pdel_period(self) -> float:
        if self.s["pdel_sweep"]:
            return self._line_synced(self.s["delay"])
        return self.s["pdel_interval"] * self.line_period

    def _line_synced(self, delay: float) -> float:
        """Sweep-output cycle time for a delay: whole line cycles, at least PDEL_MIN_PLC (U; see
        the module docstring)."""
        t = self.line_period
        return max(PDEL_MIN_PLC, math.ceil(delay / t - 1e-9)) * t

    def _pdel_list(self) -> bool:
        """Pulse Delta sweep output with a custom list (``PDEL:SWE ON``, ``SWE:SPAC LIST``).

        Only LIST spacing is modelled as a sweep; LIN/LOG sweep output keeps the fixed HIGH level
        timed by SOUR:DEL (the drivers never use them)."""
        return bool(self.s["pdel_sweep"]) and self.s["swe_spacing"] == "LIST"

    def _list_periods(self) -> tuple[float, ...]:
        """Cycle time of each list point: the delay list, or SOUR:DEL for every point (U)."""
        d = self.s["list_del"] or (self.s["delay"],) * len(self.s["list_curr"])
        return tuple(self._line_synced(x) for x in d)

    def _pdel_cycle(self, high: float | None = None, period: float | None = None) -> None:
        """One Pulse Delta cycle: low (A), pulse (B), low (C) -> one reading in the buffer.

        ``high``/``period`` come from the custom list in a list sweep; by default PDEL:HIGH and
        the fixed-output (or SOUR:DEL) cycle time."""
        bench = self.bench
        s = self.s
        low, width = s["pdel_low"], s["pdel_width"]
        if high is None:
            high = s["pdel_high"]
        period = max(self._pdel_period() if period is None else period, width)
        hb = bench.hallbar
        low_act = self.comply(low)
        self._drive(low_act)
        bench.flush()
        other = bench.channel_current - low_act
        v_a = _hall_v(other + low_act, hb, bench.clock.now) + bench.thermal_emf() + PDEL_ADC_NOISE * bench.noise()
        high_act = self.comply(high)
        if self._tripped and s["swe_cab"] and s["pdel_sweep"]:
            # SOUR:SWE:CAB ON: the sweep stops at compliance; this cycle stores no reading
            self.running = False
            self.event["oper"] |= 1 << 2
            self._drive(self.comply(low))
            return
        t_pulse = self.clock.now
        bench.deliver_pulse(self.address, high_act, width)
        v_b = _hall_v(other + high_act, hb, bench.clock.now) + bench.thermal_emf() + PDEL_ADC_NOISE * bench.noise()
        self.clock.advance(period - width)
        bench.flush()
        v_c = _hall_v(other + low_act, hb, bench.clock.now) + bench.thermal_emf() + PDEL_ADC_NOISE * bench.noise()
        if s["pdel_lme"] == 2:
            v = (2 * v_b - v_a - v_c) / 2
        else:
            v = v_b - v_a
        self._store(self._convert(v, high - low, high), t_pulse + s["pdel_sdelay"], high)

    def _convert(self, v: float, di: float, i_peak: float) -> float:
        u = self.s["unit"]
        if u == "V":
            return v
        if u == "OHMS":
            return v / di if di else 9.9e37
        if u == "SIEM":
            return di / v if v else 9.9e37
        return abs(v * i_peak) if self.s["unit_power"] == "PEAK" else abs(v * i_peak) * self.s["pdel_width"] / self._pdel_period()

    # ---- Delta ---------------------------------------------------------------------------
    def _delta_high_set(self) -> None:
        self.s["delt_low"] = -self.s["delt_high"]

    def _nvm_aperture(self) -> float:
        nvm = self.nvm
        return nvm.aperture() if nvm is not None else 5 * self.line_period

    def _delta_step(self, total: int | None) -> None:
        """One A/D of a Delta run; from the third on, each A/D completes a reading."""
        s = self.s
        bench = self.bench
        i_set = s["delt_high"] if self._delta_i % 2 == 0 else s["delt_low"]
        i_act = self.comply(i_set)
        if self._tripped and s["delt_cab"]:
            self.running = False
            self._set_output(True, 0.0)
            return
        self._drive(i_act)
        self.clock.advance(s["delt_delay"] + self._nvm_aperture())
        bench.flush()
        nvm = self.nvm
        sigma = nvm.noise_sigma() if nvm is not None else 10e-9
        v = bench.channel_current * bench.hallbar.read_resistance(bench.clock.now) + bench.thermal_emf() \
            + sigma * bench.noise()
        self._delta_v.append(v)
        self._delta_i += 1
        if len(self._delta_v) >= 3:
            n = self._delta_readings
            x, y, z = self._delta_v[-3:]
            d = (x - 2 * y + z) / 4 * (-1 if n % 2 else 1)
            di = (s["delt_high"] - s["delt_low"]) / 2
            self._store(self._convert(d, di, s["delt_high"]), self.clock.now, s["delt_high"])
            self._delta_readings += 1
            del self._delta_v[0]
        if total is not None and self._delta_readings >= total:
            self.running = False

    # ---- buffer and reading --------------------------------------------------------------
    def buffer_clear(self) -> None:
        self.buffer.clear()
        self._last_read_index = -1
        self._fresh_index = -1

    def _store(self, reading: float, t: float, source: float) -> None:
        self._latest = (reading, t, self._cycle_no, source)
        self._cycle_no += 1
        self.event["meas"] |= 1 << 5
        if self.s["trac_feed_cont"] == "NEXT" and len(self.buffer) < self.s["trac_points"]:
            self.buffer.append(self._latest)
            self.event["meas"] |= 1 << 7
            if len(self.buffer) >= self.s["trac_points"]:
                self.event["meas"] |= 1 << 9

    def _fmt(self, rec: tuple, t0: float) -> list[str]:
        out = []
        for el in self.elements:
            if el == "READ":
                out.append(nr3(rec[0]))
            elif el == "TST":
                out.append(nr3(rec[1] - t0))
            elif el == "RNUM":
                out.append(f"{rec[2]:+d}")
            elif el == "SOUR":
                out.append(nr3(rec[3]))
            elif el == "COMP":
                out.append("0")
            elif el == "AVOL":
                out.append(nr3(0.0))
        return out

    def trace_data(self, start: int, count: int | None) -> str:
        self._catch_up()
        buf = self.buffer
        if not buf:
            raise err(-230)     # empty buffer: error, no reply (the reader times out)
        t0 = buf[0][1]
        sel = buf[start:] if count is None else buf[start:start + count]
        return ",".join(x for rec in sel for x in self._fmt(rec, t0))

    def _trace_sel(self, p: list[str]) -> str:
        if len(p) != 2:
            raise err(-109)
        start, count = int(Int(0, 65535).parse(p[0])), int(Int(1, 65536).parse(p[1]))
        if start + count > len(self.buffer):
            raise err(-222)
        return self.trace_data(start, count)

    def _form_elem(self, p: list[str]) -> None:
        names = {"READ": "READ", "READING": "READ", "TST": "TST", "TSTAMP": "TST", "RNUM": "RNUM",
                 "RNUMBER": "RNUM", "SOUR": "SOUR", "SOURCE": "SOUR", "COMP": "COMP",
                 "COMPLIANCE": "COMP", "AVOL": "AVOL", "AVOLTAGE": "AVOL", "UNIT": "UNIT", "UNITS": "UNIT"}
        els: list[str] = []
        for x in p:
            u = x.upper()
            if u in ("DEF", "DEFAULT"):
                els += ["READ", "TST"]
            elif u == "ALL":
                els += list(_ELEMENTS)
            elif u in names:
                els.append(names[u])
            else:
                raise err(-224)
        self.elements = [e for e in _ELEMENTS if e in els and e != "UNIT"]

    def sense_data(self, fresh: bool) -> str:
        if self.armed not in ("PDEL", "DELT") or (not self.running and not hasattr(self, "_latest")):
            raise err(-221)
        self._catch_up()
        latest = getattr(self, "_latest", None)
        if latest is None:
            raise err(-230)
        if fresh:
            if self._fresh_index == self._cycle_no:
                raise err(-230)
            self._fresh_index = self._cycle_no
        return nr3(latest[0])

    # ---- waveform ------------------------------------------------------------------------
    def _arb(self, p: list[str], append: bool) -> None:
        vals = [Num(-1, 1).parse(x) for x in p]
        if len(vals) > 100:
            raise err(-222)
        self._arb_data = (self._arb_data if append else []) + vals

    def _wave_cycles_set(self) -> None:
        c = self.s["wave_dur_cycles"]
        self.s["wave_dur_time"] = c / self.s["wave_freq"] if c != math.inf else math.inf

    def wave_start(self) -> None:
        if self.armed != "WAVE":
            raise err(-221)
        self._wave_on = True
        self._wave_t0 = self.clock.now
        self.event["oper"] |= 1 << 4
        self._dc_changed()
        self.bench._notify()

    def wave_abort(self) -> None:
        if self._wave_on:
            self.event["oper"] |= 1 << 7
        self._wave_on = False
        if self.armed == "WAVE":
            self.armed = None
        self._dc_changed()
        self.bench._notify()

    def _wave_changed(self) -> None:
        if self._wave_on:
            self._dc_changed()
            self.bench._notify()

    def wave_state(self) -> tuple[bool, float, float, float, bool]:
        """(running, frequency Hz, peak amplitude A, marker phase deg, marker on) for lock-ins."""
        s = self.s
        on = self._wave_on and s["wave_func"] == "SIN" and (
            self.clock.now - self._wave_t0 <= s["wave_dur_time"])
        ampl = s["wave_ampl"]
        if on:   # the peak current is limited by the compliance like a DC level
            ampl = min(ampl, s["comp"] / self.bench.hallbar.longitudinal_resistance)
        return on, s["wave_freq"], ampl if on else 0.0, s["wave_pmar"], bool(s["wave_pmar_state"])


def _hall_v(current: float, hallbar, t: float) -> float:
    """Hall voltage of one A/D reading: I·R_H as read at t; no device read at zero current (the
    usual Pulse Delta low level), where it would be multiplied away, so a reading costs one read."""
    return current * hallbar.read_resistance(t) if current else 0.0
