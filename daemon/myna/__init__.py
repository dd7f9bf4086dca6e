"""Myna: offline text-to-speech runtime for small Linux boards (no torch, no GPL code)."""

__version__ = "0.1.0"
