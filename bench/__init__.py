"""`make bench`: the mesh measured against its own baselines, side by side in one run (issue 6)."""
