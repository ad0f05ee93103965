"""What every provider service shares: subject validation, caller context, sandbox population."""
