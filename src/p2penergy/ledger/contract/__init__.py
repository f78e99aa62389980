"""The settlement contract: Vyper source, its committed compiled artifact, and the build."""
