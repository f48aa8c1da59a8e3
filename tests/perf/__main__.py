"""`python -m tests.perf bot|sync|soak …`, which `scripts/bench` runs from the checkout."""

from tests.perf.cli import main

main()
