"""Illustra: search digitised image collections by description or by example."""

__version__ = "0.1.0"
