"""graphopt's version (a leaf module: the package and the output writers read it)."""

__version__ = "0.1.0"
