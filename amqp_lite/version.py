"""The package's version, in a module of its own so the protocol core can name it without
importing the package's public facade (which reaches the broker and trio)."""

__version__ = "0.1.0"
