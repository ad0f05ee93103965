"""Generate the Python SDK (messages, gRPC stubs and typed .pyi) from protos/.

The output goes to apiparticulier/ at the repository root. It is never committed
and never edited by hand: run `make protos` after changing a contract.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

_ROOT = Path(__file__).resolve().parent.parent
_PROTOS = _ROOT / "protos"
_OUT = _ROOT / "apiparticulier"
_WELL_KNOWN = Path(protoc.__file__).parent / "_proto"
# The mypy-protobuf plugins live beside this interpreter, whether or not the venv is on PATH.
_BIN = Path(sys.executable).parent


def main() -> int:
    """Regenerate the SDK from scratch and return protoc's exit status."""
    sources = sorted(str(p.relative_to(_PROTOS)) for p in _PROTOS.rglob("*.proto"))
    shutil.rmtree(_OUT, ignore_errors=True)
    status: int = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{_PROTOS}",
            f"-I{_WELL_KNOWN}",
            f"--plugin=protoc-gen-mypy={_BIN / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={_BIN / 'protoc-gen-mypy_grpc'}",
            f"--python_out={_ROOT}",
            f"--grpc_python_out={_ROOT}",
            f"--mypy_out={_ROOT}",
            f"--mypy_grpc_out={_ROOT}",
            *sources,
        ]
    )
    if status != 0:
        return status
    # protoc writes modules but no packages; the SDK must import as one package.
    for directory in [_OUT, *(p for p in _OUT.rglob("*") if p.is_dir())]:
        (directory / "__init__.py").touch()
    (_OUT / "py.typed").touch()
    print(f"generated {len(sources)} contracts into {_OUT.relative_to(_ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
