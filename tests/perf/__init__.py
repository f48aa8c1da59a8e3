"""Benchmarks and the soak of the real bot against the local fakes, run with `scripts/bench`.

They live beside the tests, not in the product package, because they drive the bot through
`tests/fakes/` (Discord, Last.fm) and the end-to-end test world (`tests/bot/world.py`), which the
installed package does not ship: the wheel holds the product alone (README, "Command line").
"""
