"""The simulator's one error for bad input (a preset name, a parameter, a seed).

The simulator stands alone behind PyVISA and imports nothing of labspin, so it has its own class;
labspin shows it like its own `labspin.errors.UserError`: one line, CLI exit status 2.
"""


class SimulatorInputError(ValueError):
    """Bad input to the simulator: the message names the field and the reason, on one line."""
