"""File formats at the edge: reading and writing the core's objects."""
