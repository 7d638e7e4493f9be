"""The sync core: message contract and validation, planning (group, coalesce, order), outcome decisions.

Pure: imports no Azure SDK and no HTTP library. It talks to the outside through the ports in `ports.py`.
"""
