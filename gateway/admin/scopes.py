"""The scopes a token may carry, read from the contracts, never written twice."""

from __future__ import annotations

import functools
import importlib
import pkgutil

import apiparticulier
from apiparticulier.common.v1 import options_pb2


@functools.cache
def known_scopes() -> frozenset[str]:
    """Every scope that opens at least one method of the SDK's services.

    Read from the ``method_access`` option of each method in the generated
    ``*_pb2`` modules of the ``apiparticulier`` package, as the gateway does at
    start-up, so the CLI and the gateway agree on what a scope is.
    """
    scopes: set[str] = set()
    for module_info in pkgutil.walk_packages(apiparticulier.__path__, f"{apiparticulier.__name__}."):
        if not module_info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(module_info.name)
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                options = method.GetOptions()
                if options.HasExtension(options_pb2.method_access):
                    scopes.update(options.Extensions[options_pb2.method_access].scopes)
    return frozenset(scopes)
