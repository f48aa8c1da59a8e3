"""Sonance: one Discord cog per command family; thin adapters over core."""
