"""Simulated Hall-bar bench: device physics, SCPI instruments, and the PyVISA library serving them."""
from .bench import LogRecord, SimBench
from .clock import VirtualClock

__all__ = ["SimBench", "LogRecord", "VirtualClock"]
