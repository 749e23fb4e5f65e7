#!/usr/bin/env bash
# make pin-images: pins each base image in the Dockerfile (ARG NODE_IMAGE / RASA_PYTHON_IMAGE /
# APP_PYTHON_IMAGE) to the digest its tag points at today: `python:3.12-slim-bookworm@sha256:...`.
# Run it on a machine with Docker and access to the registry, review the diff, rebuild, commit.
# Run it again to refresh (monthly, and after a Debian or Python security release): it always
# starts from the tag, so the new digest replaces the old one.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v docker >/dev/null 2>&1 || { echo "FEJL: docker mangler" >&2; exit 1; }
for arg in NODE_IMAGE RASA_PYTHON_IMAGE APP_PYTHON_IMAGE; do
  ref=$(sed -n "s/^ARG $arg=//p" Dockerfile)
  [ -n "$ref" ] || { echo "FEJL: ARG $arg findes ikke i Dockerfile" >&2; exit 1; }
  tag=${ref%@*}
  # The digest of the multi-platform index, so the pin holds for amd64 and arm64 alike.
  digest=$(docker buildx imagetools inspect "$tag" --format '{{json .Manifest}}' 2>/dev/null \
             | python3 -c 'import json, sys; print(json.load(sys.stdin)["digest"])' 2>/dev/null || true)
  if [ -z "$digest" ]; then
    docker pull -q "$tag" >/dev/null
    digest=$(docker image inspect --format '{{index .RepoDigests 0}}' "$tag" | sed 's/.*@//')
  fi
  case $digest in sha256:*) ;; *) echo "FEJL: ingen digest for $tag" >&2; exit 1 ;; esac
  sed -i "s|^ARG $arg=.*|ARG $arg=$tag@$digest|" Dockerfile
  echo "$arg=$tag@$digest"
done
echo "Dockerfile er opdateret; byg begge images, kør testene, og commit ændringen."
