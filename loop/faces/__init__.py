"""The faces: command line, windows and benchmarks, thin layers over the core."""
import os

# pygame prints a banner on import unless told not to; the windows import it lazily.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
