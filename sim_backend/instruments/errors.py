"""The instruments' error codes: the SCPI standard's negative error numbers, with the texts the
Keithley manuals' error-message tables give them; ``err(code)`` is the exception a handler raises."""
from __future__ import annotations

from ..scpi import ScpiError

KEITHLEY_ERRORS = {
    -100: "Command error", -101: "Invalid character", -102: "Syntax error", -104: "Data type error",
    -108: "Parameter not allowed", -109: "Missing parameter", -113: "Undefined header",
    -200: "Execution error", -213: "Init ignored", -214: "Trigger deadlock", -221: "Settings conflict",
    -222: "Parameter data out of range", -224: "Illegal parameter value", -230: "Data corrupt or stale",
    -300: "Device-specific error", -310: "System error", -350: "Queue overflow",
    -410: "Query INTERRUPTED", -420: "Query UNTERMINATED",
}


def err(code: int) -> ScpiError:
    return ScpiError(code, KEITHLEY_ERRORS.get(code, "Error"))
