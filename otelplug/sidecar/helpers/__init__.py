"""Plumbing shared by components, so a component author writes one transform."""
