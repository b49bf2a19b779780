"""Helpers shared by every system: pools, image previews, the promotion gate."""
