"""The provider services, one package each, and what they share in `services.common`."""
