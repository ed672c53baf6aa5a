"""Names the instrument modules import, from the modules that hold them (kept for imports that
still say ``from .base import ...``)."""
from .errors import KEITHLEY_ERRORS, err
from .faults import FaultInjection
from .instrument import SimInstrument
from .keithley import KeithleyInstrument
from .params import Bool, Enum, Int, Num, nr3
from .srs import SrsInstrument

__all__ = ["KEITHLEY_ERRORS", "err", "FaultInjection", "SimInstrument", "KeithleyInstrument", "Bool",
           "Enum", "Int", "Num", "nr3", "SrsInstrument"]
