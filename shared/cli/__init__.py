"""Operator commands, `python -m shared`: enqueue files, dead-letter list/show/replay/purge, health (main.py)."""
