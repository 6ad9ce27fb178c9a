"""refopt.optim (being written)."""
