"""Local stack for people and tests: a bundled Redis and the `make run` supervisor."""
