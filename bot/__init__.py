"""Sonance: the Discord application shell (composition root, CLI, rendering)."""
