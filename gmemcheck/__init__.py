"""gmemcheck: a model checker for the memory semantics of Linux guest_memfd."""

__version__ = "0.1.0"
