"""Pure renderers: domain results -> embeds, files and chart images (PNG bytes)."""
