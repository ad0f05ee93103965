"""A command-line client of the gateway, for integrators and operators: ``python -m client``."""
