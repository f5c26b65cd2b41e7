"""Vault, the data layer: the engine (render jobs, media I/O) and the render node."""
