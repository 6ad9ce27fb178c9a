"""refopt.experiments (being written)."""
