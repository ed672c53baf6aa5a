"""Instrument roles and their implementations on pymeasure classes."""
