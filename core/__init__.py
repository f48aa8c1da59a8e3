"""Sonance: the engine. Never imports discord."""
