# PostgreSQL 15 from Debian's own packages on debian:bookworm-slim (no Docker Hub
# postgres image needed). The entrypoint initialises the data volume on first start:
#   POSTGRES_USER      superuser role the services use            (default finestra)
#   POSTGRES_PASSWORD  its password (required on first start)
#   POSTGRES_DB        database created for it                    (default = POSTGRES_USER)
#   POSTGRES_LISTEN_ADDRESSES  (default *)   PGPORT (default 5432)
# Network clients authenticate with scram-sha-256; the Unix socket inside the container
# trusts local users (for `docker exec ... psql`).
#
#   docker build -f deploy/docker/postgres.Dockerfile -t finestra/postgres .

ARG BASE=debian:bookworm-slim
FROM ${BASE}
LABEL org.opencontainers.image.title="PostgreSQL 15 for Finestra (Debian packages)" \
      org.opencontainers.image.base.name="debian:bookworm-slim"
# Debian's postgresql-common would create a "main" cluster at install time: we manage our
# own data directory instead.
RUN mkdir -p /etc/postgresql-common/createcluster.d \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/finestra.conf \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
 && chmod 0700 /var/lib/postgresql/data
COPY deploy/docker/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data \
    PGPORT=5432 \
    POSTGRES_USER=finestra \
    POSTGRES_LISTEN_ADDRESSES=* \
    LANG=C.UTF-8
USER postgres
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=4s --start-period=30s --retries=5 \
  CMD pg_isready -q -h 127.0.0.1 -p "$PGPORT" -U "$POSTGRES_USER" -d "${POSTGRES_DB:-$POSTGRES_USER}"
ENTRYPOINT ["postgres-entrypoint"]
