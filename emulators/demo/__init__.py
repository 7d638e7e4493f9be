"""`make run`: the demo of dataverse-sync on the local cloud (run.py explains the steps)."""
