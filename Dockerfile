# syntax=docker/dockerfile:1
# One image for every process of the mesh; the container's command picks the process:
#   ["python", "-m", "gateway"], ["python", "-m", "gateway.admin"], ["python", "-m", "services.cnaf"], ...
#
# Build:  docker build -t api-particulier-mesh:0.1.0 .
#
# The base is pinned by an explicit version tag. Pin it by digest at release time
# (`docker buildx imagetools inspect python:3.11.13-slim-bookworm` prints it) and
# pass it with --build-arg PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:<digest>.
# Both stages must use the same image: the venv points at its interpreter.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- build: dependencies into a venv, SDK generated from protos/ ------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# Dependencies first, from pyproject.toml alone, so that a code change keeps this layer cached.
# pyproject.toml stays the single list: the runtime dependencies go to /opt/venv, the two
# code generators of the dev extra to a throw-away venv that never reaches the runtime stage.
COPY pyproject.toml ./
RUN python - <<'PY'
import re
import tomllib

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
open("runtime.txt", "w").write("\n".join(project["dependencies"]) + "\n")
generators = [
    spec for spec in project["optional-dependencies"]["dev"]
    if re.split(r"[<>=!~\[ ]", spec, maxsplit=1)[0] in {"grpcio-tools", "mypy-protobuf"}
]
open("codegen.txt", "w").write("\n".join(generators) + "\n")
PY
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --requirement runtime.txt \
 && python -m venv /opt/codegen \
 && /opt/codegen/bin/pip install --requirement codegen.txt

# Only what runs, plus what generates the SDK.
COPY protos/ protos/
COPY scripts/ scripts/
COPY contract/ contract/
COPY runtime/ runtime/
COPY services/ services/
COPY gateway/ gateway/
RUN /opt/codegen/bin/python scripts/gen_protos.py \
 && python -m compileall -q /src/apiparticulier /src/runtime /src/services /src/gateway \
 && /opt/venv/bin/python -m compileall -q /opt/venv

# --- runtime: slim, non-root, nothing written outside /tmp -----------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="api-particulier-mesh" \
      org.opencontainers.image.description="API Particulier gRPC mesh: gateway, provider services, token admin CLI" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"

# Bytecode is compiled at build time; nothing may write it at run time (read-only root filesystem).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp

COPY --from=build /opt/venv /opt/venv
COPY --from=build /src/apiparticulier /app/apiparticulier
COPY --from=build /src/contract /app/contract
COPY --from=build /src/runtime /app/runtime
COPY --from=build /src/services /app/services
COPY --from=build /src/gateway /app/gateway

WORKDIR /app
# Numeric, so that Kubernetes can check runAsNonRoot without a passwd entry. Keys and
# certificates are never in the image: they are mounted from Secrets at run time.
USER 10001:10001

CMD ["python", "-m", "gateway"]
