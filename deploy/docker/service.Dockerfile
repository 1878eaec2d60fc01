# Finestra services: one image holding all five binaries (finestra-intake,
# finestra-referral-router, finestra-benefits-office, finestra-notification,
# finestra-reporting) plus the operator tools; docker-compose.yml picks the binary per
# service with `command:`.
#
# Why one image and not ARG SERVICE: the five binaries share one static library and one
# cmake build, so five images would run the same build five times (or depend on a cache)
# for binaries that together weigh well under a megabyte more than one of them. One image
# builds once, is pushed/pulled once, and every service runs exactly the same build.
#
#   docker build -f deploy/docker/service.Dockerfile -t finestra/service .
#   docker run --rm finestra/service finestra-intake --help
#
# Base: debian:bookworm-slim (Docker Hub; on closed machines deploy/docker/make-base-image.sh
# makes the same name from Debian's mirror).

ARG BASE=debian:bookworm-slim

# ---- build --------------------------------------------------------------------------
FROM ${BASE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      gcc libc6-dev make cmake pkg-config \
      libzmq3-dev libczmq-dev libmsgpack-dev libhiredis-dev libpq-dev \
      libmicrohttpd-dev libsodium-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Build inputs only (see .dockerignore): editing docs or deploy files keeps the cache.
COPY CMakeLists.txt ./
COPY cmake/ cmake/
COPY common/ common/
COPY proto/ proto/
COPY services/ services/
COPY tools/ tools/
COPY bench/ bench/
COPY tests/CMakeLists.txt tests/CMakeLists.txt
# Criterion is not installed here, so tests/ is skipped; bench/ is built by the top-level
# file but not installed. `cmake --install` copies the five services and the tools.
ARG BUILD_TYPE=RelWithDebInfo
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=${BUILD_TYPE} -DCMAKE_INSTALL_PREFIX=/opt/finestra \
 && cmake --build /build -j"$(nproc)" \
 && cmake --install /build --strip \
 && ls -l /opt/finestra/bin

# ---- runtime ------------------------------------------------------------------------
FROM ${BASE} AS runtime
# Runtime libraries only (Debian 12 names); no compiler, no -dev package, no curl:
# the health check speaks HTTP with bash's /dev/tcp.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libzmq5 libczmq4 libmsgpackc2 libhiredis0.14 libpq5 libmicrohttpd12 libsodium23 \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 finestra \
 && useradd --system --uid 10001 --gid finestra --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin finestra
LABEL org.opencontainers.image.title="Finestra services (intake, referral-router, benefits-office, notification, reporting)" \
      org.opencontainers.image.base.name="debian:bookworm-slim"
COPY --from=build /opt/finestra/bin/ /usr/local/bin/
COPY deploy/docker/finestra-healthcheck /usr/local/bin/finestra-healthcheck
# Demo centres and postcodes for `finestra-intake load-territory` (see deploy/README.md).
COPY deploy/demo/ /usr/share/finestra/demo/
# The referral-router's directory: demo services, need vocabulary, Z-code mapping.
COPY services/referral-router/data/ /usr/share/finestra/router/
# Inside a container the services listen on every interface of the container's network
# namespace; compose (or `docker run -p`) decides what reaches the host.
ENV FINESTRA_HTTP_BIND=0.0.0.0 \
    LANG=C.UTF-8
USER finestra:finestra
WORKDIR /tmp
# Ready = /readyz answers 200 on FINESTRA_HTTP_PORT (set it per service; see compose).
HEALTHCHECK --interval=10s --timeout=4s --start-period=40s --retries=3 \
  CMD ["finestra-healthcheck"]
# No ENTRYPOINT: the command names the service, e.g. ["finestra-intake"].
CMD ["finestra-intake", "--help"]
