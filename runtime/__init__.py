"""The shared server runtime: every process of the mesh (gateway and providers) is built on it.

- `settings`: the typed settings base, read once from the environment.
- `logs`: structlog JSON logging with request-scoped context.
- `errors`: the error model (gRPC status with ErrorInfo, LocalizedMessage, BadRequest, RetryInfo).
- `interceptors`: the call boundary every server puts first.
- `server`: grpc.aio bootstrap with health, reflection, metrics, TLS and graceful shutdown.
- `pem`: a signer's PEM private key read from its file (tokens, the journal's checkpoints).
"""
