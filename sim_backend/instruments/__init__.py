"""Simulated instruments, one module per model; ``MODELS`` maps the driver names to classes."""
from .keithley2182 import Keithley2182
from .keithley2400 import Keithley2400
from .keithley2450 import Keithley2450
from .keithley6221 import Keithley6221
from .sr830 import SR830
from .sr860 import SR860

MODELS = {
    "keithley6221": Keithley6221,
    "keithley2182": Keithley2182,
    "sr830": SR830,
    "sr860": SR860,
    "keithley2400": Keithley2400,
    "keithley2450": Keithley2450,
}

__all__ = ["MODELS", "Keithley6221", "Keithley2182", "SR830", "SR860", "Keithley2400", "Keithley2450"]
