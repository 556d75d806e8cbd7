"""The faces: command line, windows and benchmarks, thin layers over the core."""
