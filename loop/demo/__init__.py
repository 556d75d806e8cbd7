"""The built-in demo: a deterministic moving scene with ground truth, and a simulated user."""
