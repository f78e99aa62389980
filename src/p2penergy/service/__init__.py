"""The live exchange service: HTTP API, journal-first persistence, signed requests, dashboard.

Edge code: it imports the market, ledger and agents; nothing of ours imports it.
"""
