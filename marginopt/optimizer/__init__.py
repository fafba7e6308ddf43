"""The problem builder, objectives, constraints, results and verification (issue 3)."""
