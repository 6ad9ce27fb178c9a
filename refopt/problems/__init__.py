"""refopt.problems (being written)."""
