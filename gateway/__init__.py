"""The gateway: the mesh's only public entry point.

authenticate → authorize (scopes) → recipient → rate-limit (with revocation) →
route to the provider → mask fields → journal and usage statistics.
"""
