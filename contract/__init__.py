"""What the contracts in protos/ say, read once from the generated descriptors.

Routes, scopes, masking plans, the API catalogue and the v3 JSON of an answer: the gateway, the
client and the bench derive from this package, never from a table of their own.
"""
