"""filamentctl: keeps 3D-printer filament dry. Version only; imports nothing heavy."""

__version__ = "0.1.0"
