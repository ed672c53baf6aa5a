"""Simulated Hall-bar bench: device physics, SCPI instruments, and the PyVISA library serving them."""
