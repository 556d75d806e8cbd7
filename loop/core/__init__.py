"""The core: base network, patch, labels, trainer and verdicts. No windows, no files."""
