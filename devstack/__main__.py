"""`python -m devstack`: what `make run` starts."""

from devstack.run import main

main()
