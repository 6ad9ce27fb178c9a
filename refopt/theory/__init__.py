"""refopt.theory (being written)."""
