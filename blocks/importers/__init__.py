"""Importers: turn a model exported by another runtime into an addon folder (networks and addon.json)."""
