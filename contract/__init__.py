"""What the contracts in protos/ say, read once from the generated descriptors.

Routes, scopes, masking plans and the API catalogue: the gateway, the client and the bench derive
from this package, never from a table of their own.
"""
