"""Clients of external services (Last.fm, Spotify, albumoftheyear.org) and their shared plumbing.

Each client takes `Settings`, the shared `aiohttp.ClientSession` and the one-per-service limiter
from `SourceLimiters`, all built once in `build_services`.
"""
