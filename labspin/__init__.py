"""labspin: spintronic synapse devices from the bench pulse to the quantized network."""

__version__ = "0.1.0"
