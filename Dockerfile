# AF-assistenten's images, one per runtime (docs/deployment.md, "Images"):
#
#   docker build --target rasa -t af-assistenten:rasa .   Rasa server (Python 3.10, Rasa 3.6), with the model
#   docker build --target app  -t af-assistenten:app  .   action server, web pages, outbox worker (Python 3.12)
#   docker build -t af-assistenten .                      the default (last stage) is the `rasa` image, which
#                                                         still runs every command (docker-compose.yml)
#
# The model is trained at build time, so the `rasa` image is one immutable release: code, training
# data and model together. Every Python package comes from a lock with hashes (locks/, scripts/lock.sh):
# pip refuses any file whose sha256 is not in the lock.
#
# Base images: the ARGs below name them by tag. For a release, pin them by digest, so a rebuild takes
# byte-for-byte the same base: `make pin-images` (scripts/pin_base_images.sh, on a machine with Docker
# and access to the registry) rewrites each default to `tag@sha256:...`; commit that change. Refresh the
# same way (monthly, and whenever Debian or Python publish a security fix) and rebuild. A digest cannot
# be looked up where this file was written (no registry access), and a made-up one would only break the
# build, so the tags stay until the operator pins them.
ARG NODE_IMAGE=node:20-bookworm-slim
ARG RASA_PYTHON_IMAGE=python:3.10-slim-bookworm
ARG APP_PYTHON_IMAGE=python:3.12-slim-bookworm

# -- the browser's socket.io client for the leader's page (node_modules/socket.io-client) --
FROM ${NODE_IMAGE} AS js
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# -- Python 3.10 (Rasa 3.6 refuses 3.11+) with the locked packages --
FROM ${RASA_PYTHON_IMAGE} AS rasa-base
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PYTHONWARNINGS=ignore::DeprecationWarning,ignore::PendingDeprecationWarning
WORKDIR /app
COPY locks/rasa-py310.txt locks/
RUN pip install --require-hashes -r locks/rasa-py310.txt
COPY af_core/ af_core/
COPY actions/ actions/
COPY channels/ channels/
COPY nlu_components/ nlu_components/
COPY web/ web/
COPY servicenow_emulator/ servicenow_emulator/
COPY scripts/ scripts/
COPY trainer/ trainer/
COPY profiles/ profiles/
COPY domain/ domain/
COPY data/ data/
COPY config.yml credentials.yml endpoints.yml ./
# What the trainer's workbench measures a new model on (the trainer service, docker-compose.yml).
COPY tests/eval/ tests/eval/
COPY tests/heldout/ tests/heldout/
COPY tests/stories/ tests/stories/
COPY --from=js /app/node_modules/ node_modules/

# -- train the model for exactly this code and data --
FROM rasa-base AS model
RUN python scripts/model.py ensure

# -- action server, web pages and outbox worker on a supported Python: no Rasa, no TensorFlow --
FROM ${APP_PYTHON_IMAGE} AS app
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    PYTHONWARNINGS=ignore::DeprecationWarning,ignore::PendingDeprecationWarning
WORKDIR /app
COPY locks/app-py312.txt locks/
RUN pip install --require-hashes -r locks/app-py312.txt
COPY af_core/ af_core/
COPY actions/ actions/
COPY web/ web/
COPY servicenow_emulator/ servicenow_emulator/
COPY scripts/ scripts/
COPY trainer/ trainer/
COPY profiles/ profiles/
# The responses (domain/*.yml): the web server reads the main menu from domain/basics.yml.
COPY domain/ domain/
COPY --from=js /app/node_modules/ node_modules/
RUN useradd --system --uid 10001 --create-home af \
    && mkdir -p var/shared logs \
    && chown -R af:af var logs
USER af
ENV AF_BIND_HOST=0.0.0.0
EXPOSE 5055 8080
# Default: the action server (rasa-sdk 3.21). Web pages: python -m web. Outbox: python -m af_core.outbox.
CMD ["python", "scripts/action_server_app.py"]

# -- the Rasa server (default target): Python 3.10, Rasa 3.6, the model --
FROM rasa-base AS rasa
COPY --from=model /app/models/ models/
# data/, domain/, profiles/ and models/ belong to af too: the trainer service (same image) edits them
# and trains into models/ (its volumes are first filled from here, with the owner).
RUN useradd --system --uid 10001 --create-home af \
    && mkdir -p var/shared var/models logs \
    && chown -R af:af var logs \
    && chown -R af:af data domain profiles models
USER af
# Listen on all interfaces inside the container; the compose network / pod network decides who reaches it.
ENV AF_BIND_HOST=0.0.0.0 \
    RASA_TELEMETRY_ENABLED=false
EXPOSE 5005 5055 8080
# Default: one Rasa server replica (writes its endpoints file from the environment, then serves).
CMD ["python", "scripts/rasa_replica.py"]
