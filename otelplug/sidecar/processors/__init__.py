"""Processors: one module (or package) per type; ``_actions.py`` is the
attribute-action engine ``attributes`` and ``resource`` share."""
