"""The gateway: the mesh's only public entry point.

authenticate → authorize (scopes) → recipient → rate-limit (with revocation) →
resolve a FranceConnect subject → forward to the provider → mask fields → journal
and usage statistics: the steps of `gateway.call_path`, behind its gRPC adapters
(`gateway.grpc`) and its REST front (`gateway.rest`).
"""
