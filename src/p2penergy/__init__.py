"""p2penergy: peer-to-peer electricity trading — exchange, provenance, agents and ledger."""

__version__ = "0.1.0"
