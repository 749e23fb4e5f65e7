# The one image of AF-assistenten: Rasa server, action server, outbox worker, web pages and
# (development only) the ServiceNow emulator are the same image with different commands
# (see docker-compose.yml and docs/deployment.md). The model is trained at build time, so an
# image is one immutable release: code, training data and model together.

# -- the browser's socket.io client for the leader's page (node_modules/socket.io-client) --
FROM node:20-bookworm-slim AS js
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# -- Python 3.10 (Rasa 3.6 refuses 3.11+) with the pinned packages --
FROM python:3.10-slim-bookworm AS base
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PYTHONWARNINGS=ignore::DeprecationWarning,ignore::PendingDeprecationWarning
WORKDIR /app
COPY requirements.txt constraints.txt ./
RUN pip install -r requirements.txt -c constraints.txt
COPY actions/ actions/
COPY channels/ channels/
COPY web/ web/
COPY servicenow_emulator/ servicenow_emulator/
COPY scripts/ scripts/
COPY profiles/ profiles/
COPY domain/ domain/
COPY data/ data/
COPY config.yml credentials.yml endpoints.yml ./
COPY --from=js /app/node_modules/ node_modules/

# -- train the model for exactly this code and data --
FROM base AS model
RUN python scripts/model.py ensure

FROM base
COPY --from=model /app/models/ models/
RUN useradd --system --uid 10001 --create-home af \
    && mkdir -p var/shared logs \
    && chown -R af:af var logs
USER af
# Listen on all interfaces inside the container; the compose network / pod network decides who reaches it.
ENV AF_BIND_HOST=0.0.0.0 \
    RASA_TELEMETRY_ENABLED=false
EXPOSE 5005 5055 8080
# Default: one Rasa server replica (writes its endpoints file from the environment, then serves).
CMD ["python", "scripts/rasa_replica.py"]
