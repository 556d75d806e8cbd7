from loop.cli import main

# Guarded: Dask's local workers start by spawning, which imports this module again.
if __name__ == "__main__":
    raise SystemExit(main())
