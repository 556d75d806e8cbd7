"""Patchloop: point a camera, click the mistakes, a small network (a patch) learns live.

Rings, importing inward only: the core (base network, patch, trainer) knows nothing of
windows or files; the store (sessions, plugins) knows formats; the faces (CLI, windows,
benchmarks) turn events and arguments into core calls.
"""

__version__ = "0.1.0"
