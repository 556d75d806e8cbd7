"""Patchloop's OpenCL kernel layer: `.cl` sources, one per family, and their host-side launchers.

Installed as `patchloop_kernels`. Nothing here knows about patches, sessions or windows.
Layout: every feature map is NCHW float32 (see README, "Kernel layer").
"""
