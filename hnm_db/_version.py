"""The package version in one place below every other module (mining runs record it as code_version)."""

__version__ = "0.1.0"
