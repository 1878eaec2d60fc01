# Redis from Debian's packages on debian:bookworm-slim. Append-only persistence in
# /var/lib/redis (a volume). Listens on REDIS_BIND:REDIS_PORT (default 0.0.0.0:6379):
# inside a container that is the container's own network, reached only by the compose
# network, so protected mode is off; publish the port on 127.0.0.1 if at all. With host
# networking (deploy/compose.hostnet.yml) REDIS_BIND must be 127.0.0.1.
#
#   docker build -f deploy/docker/redis.Dockerfile -t finestra/redis .

ARG BASE=debian:bookworm-slim
FROM ${BASE}
LABEL org.opencontainers.image.title="Redis for Finestra (Debian packages)" \
      org.opencontainers.image.base.name="debian:bookworm-slim"
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/redis /etc/finestra \
 && chown redis:redis /var/lib/redis && chmod 0750 /var/lib/redis
COPY deploy/docker/redis.conf /etc/finestra/redis.conf
ENV REDIS_BIND=0.0.0.0 \
    REDIS_PORT=6379
USER redis
WORKDIR /var/lib/redis
VOLUME /var/lib/redis
EXPOSE 6379
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 \
  CMD redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping | grep -q PONG
# Shell form: expands REDIS_BIND/REDIS_PORT; exec keeps redis-server the main process.
ENTRYPOINT ["/bin/sh", "-c", "exec redis-server /etc/finestra/redis.conf --bind \"$REDIS_BIND\" --port \"$REDIS_PORT\" \"$@\"", "redis-server"]
