"""Token administration: keys, issuing, listing and revoking tokens (``python -m gateway.admin``).

This is the mesh's stand-in for the habilitation portal. It holds the private
signing keys; gateways hold only the public ones (``KEYS_DIR``).
"""
