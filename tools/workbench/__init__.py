"""Workstation tools: graph building, export and the placeholder voice (never imported by the runtime)."""
