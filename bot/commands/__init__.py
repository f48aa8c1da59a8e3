"""CLI command families, one module each; importing a module registers its commands."""
