# One image for every process of the mesh; the container's command picks the process:
#   ["python", "-m", "gateway"], ["python", "-m", "gateway.admin"], ["python", "-m", "services.cnaf"], ...
#
# Build (the classic builder or BuildKit alike):  docker build -t api-particulier-mesh:0.1.0 .
#
# Everything installed comes from uv.lock, as on a developer's machine: the runtime set into
# /opt/venv, the code generators into a throw-away venv of the build stage. The base is pinned
# by an explicit version tag. Pin it by digest at release time
# (`docker buildx imagetools inspect python:3.11.13-slim-bookworm` prints it) and pass it with
# --build-arg PYTHON_IMAGE=python:3.11.13-slim-bookworm@sha256:<digest>.
# Both stages must use the same image: the venv points at its interpreter.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
# The console's front-end packages (the DSFR) come from console/assets/package-lock.json.
ARG NODE_IMAGE=node:20.19.5-bookworm-slim

# --- assets: the console's static files, as locked ---------------------------------------------
FROM ${NODE_IMAGE} AS assets
WORKDIR /assets
COPY console/assets/package.json console/assets/package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- build: dependencies into a venv, SDK generated from protos/ ------------------------------
FROM ${PYTHON_IMAGE} AS build

# The same uv as the Makefile's UV_VERSION; it never downloads a Python.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_NO_CACHE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3
RUN pip install uv==0.13.10

WORKDIR /src

# Dependencies first, from the lock alone, so that a code change keeps these layers cached.
COPY pyproject.toml uv.lock ./
RUN UV_PROJECT_ENVIRONMENT=/opt/venv uv sync --frozen --no-default-groups --no-install-project \
 && UV_PROJECT_ENVIRONMENT=/opt/codegen uv sync --frozen --only-group codegen --no-install-project

# Only what runs, plus what generates the SDK.
COPY protos/ protos/
COPY scripts/ scripts/
COPY contract/ contract/
COPY runtime/ runtime/
COPY services/ services/
COPY gateway/ gateway/
COPY console/ console/
RUN /opt/codegen/bin/python scripts/gen_protos.py \
 && python -m compileall -q /src/apiparticulier /src/contract /src/runtime /src/services /src/gateway \
    /src/console \
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
COPY --from=build /src/console /app/console
COPY --from=assets /assets/node_modules/@gouvfr/dsfr/dist /app/console/assets/node_modules/@gouvfr/dsfr/dist

WORKDIR /app
# Numeric, so that Kubernetes can check runAsNonRoot without a passwd entry. Keys and
# certificates are never in the image: they are mounted from Secrets at run time.
USER 10001:10001

CMD ["python", "-m", "gateway"]
