"""`patchloop bench KIND`: measurements, each beside its peer in the same run."""
