"""The admin API, the registry's only writer (``python -m gateway.admin_api``).

`gateway.admin_api.actions` (every action on `gateway.registry.store`, with its revocation in the
gateways' Redis, by concern; on `gateway.admin_api.service`: operators, token signing), served over
gRPC (`gateway.admin_api.grpc_api`) and REST for a console (`gateway.admin_api.rest_api`) by
`gateway.admin_api.app`, with its settings (`gateway.admin_api.settings`). Apart from
`gateway.registry`, which the gateways read too: a gateway imports none of this.
"""
