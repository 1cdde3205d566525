"""Exporters: one module (or package) per type."""
