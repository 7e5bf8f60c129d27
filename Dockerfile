# cmk-controller image: `cmkctl` (plan, apply, drift, controller). Multi-stage: the build stage makes a
# virtualenv from pinned wheels; the final stage has Python, git (the controller clones the spec repo)
# and that virtualenv only: no compiler, no pip cache, no build tools. Runs as a non-root user.
#
#   docker build -t cmk-controller:0.1.0 .
#   docker run --rm cmk-controller:0.1.0 controller --source https://git.example/org/specs.git --path specs
#
# Versions are pinned: the base image tag, the Debian packages, and every Python dependency with the
# sha256 of each file pip may fetch (docker/requirements.lock and docker/build-requirements.lock,
# regenerate with `make docker-lock`; pip installs them with --require-hashes).
#
# The emulator (`emulator/`, `cmkctl emulator`) is not in the image: it is a test double that serves an
# unauthenticated admin API, with no place in a pod that holds Azure credentials. In the image,
# `cmkctl emulator` says it is not available.

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/cmkctl
COPY docker/requirements.lock docker/build-requirements.lock ./
# every file pip fetches must match a sha256 in the lock
RUN /opt/cmkctl/bin/pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
# the product only: without emulator/ the package finder installs `controller` alone
COPY controller ./controller
# build backend pinned and hashed too (no build isolation: nothing is fetched unpinned behind our back).
# The PyYAML wheel bundles libyaml, which the spec loader needs for speed (a 40,000-workspace tree
# reads ~13x slower without it): the build fails rather than ship an image that falls back.
RUN /opt/cmkctl/bin/pip install --require-hashes --no-deps -r build-requirements.lock \
    && /opt/cmkctl/bin/pip install --no-deps --no-build-isolation . \
    && /opt/cmkctl/bin/pip uninstall -y setuptools wheel \
    && /opt/cmkctl/bin/python -c "import controller.cli.app" \
    && /opt/cmkctl/bin/python -c "import yaml, sys; sys.exit(not yaml.__with_libyaml__)" \
    && if /opt/cmkctl/bin/python -c "import emulator" 2>/dev/null; then echo "emulator in the image" >&2; exit 1; fi

FROM python:3.11.11-slim-bookworm
LABEL org.opencontainers.image.title="cmk-controller" \
      org.opencontainers.image.description="Keeps Log Analytics dedicated clusters with customer-managed keys as declared in git" \
      org.opencontainers.image.licenses="MIT"
# git for the spec repository (https and ssh sources); nothing else beyond the slim base
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        git=1:2.39.5-0+deb12u3 \
        openssh-client=1:9.2p1-2+deb12u10 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 cmkctl \
    && useradd --system --uid 10001 --gid cmkctl --home-dir /home/cmkctl --create-home --shell /usr/sbin/nologin cmkctl \
    && install -d -o cmkctl -g cmkctl -m 0750 /var/lib/cmkctl
COPY --from=build /opt/cmkctl /opt/cmkctl
ENV PATH=/opt/cmkctl/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/home/cmkctl \
    CMKCTL_STATE=/var/lib/cmkctl
USER 10001:10001
WORKDIR /home/cmkctl
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["cmkctl"]
CMD ["--help"]
