"""wheelfarm: follow an upstream Python package index and build wheels it does not serve."""

__all__ = ["__version__"]

__version__ = "0.1.0"
