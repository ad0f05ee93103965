"""The france_travail provider service: job-seeker status and payments, by France Travail username."""
