"""Keithley 2182A nanovoltmeter on pymeasure 0.16, with channel 2's 12 V limit enforced.

pymeasure sets the per-channel range limits before the base initialiser, which then resets
them, so `ch_2.voltage_range = 15` reaches the instrument (scpi.md §8.2). Setting them after
initialisation makes the documented limits (ch 1: 0…120 V, ch 2: 0…12 V) actually apply.
In Delta / Pulse Delta mode the 2182A is driven by the 6221 over RS-232; this class is for
using it on its own bus address.
"""
from __future__ import annotations

from pymeasure.instruments import Instrument
from pymeasure.instruments.keithley.keithley2182 import Keithley2182 as _PMKeithley2182
from pymeasure.instruments.keithley.keithley2182 import Keithley2182Channel as _PMChannel


class Keithley2182Channel(_PMChannel):
    """A 2182A channel whose range/offset limits depend on the channel number."""

    def __init__(self, parent, id):
        super().__init__(parent, id)
        limit = 120 if int(id) == 1 else 12
        self.voltage_range_values = (0, limit)
        self.voltage_offset_values = (-limit, limit)


class Keithley2182(_PMKeithley2182):
    """pymeasure's Keithley2182 with channel limits that hold."""

    ch_1 = Instrument.ChannelCreator(Keithley2182Channel, 1)
    ch_2 = Instrument.ChannelCreator(Keithley2182Channel, 2)
