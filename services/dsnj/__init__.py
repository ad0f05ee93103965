"""The dsnj provider service: service national status from the DSNJ (Service national et jeunesse)."""
