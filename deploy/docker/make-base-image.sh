#!/usr/bin/env bash
# Builds the local stand-in for Docker Hub's debian:bookworm-slim on machines that reach
# Debian's package mirror but no container registry: debootstrap --variant=minbase, a few of
# the official image's size tweaks, then `docker import`. The Dockerfiles name their base
# `debian:bookworm-slim` either way, so operators (who pull it) and closed machines (which
# make it here) build the same Dockerfiles.
#
#   deploy/docker/make-base-image.sh [--force] [TAG]      (TAG defaults to debian:bookworm-slim)
#
# Needs root, debootstrap and a running dockerd. Skips when TAG already exists unless --force.
# MIRROR (default http://deb.debian.org/debian) and SECURITY_MIRROR may be overridden.
set -euo pipefail

force=0
if [[ ${1:-} == --force ]]; then force=1; shift; fi
tag=${1:-debian:bookworm-slim}
mirror=${MIRROR:-http://deb.debian.org/debian}
security_mirror=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
docker=${DOCKER:-docker}

if [[ $force == 0 ]] && "$docker" image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag exists; skipping (use --force to rebuild)"
  exit 0
fi
[[ $(id -u) == 0 ]] || { echo "make-base-image: needs root (debootstrap)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "make-base-image: debootstrap not installed" >&2; exit 1; }

root=$(mktemp -d /var/tmp/finestra-bookworm.XXXXXX)
trap 'rm -rf --one-file-system "$root"' EXIT

start=$(date +%s)
echo "debootstrap --variant=minbase bookworm $root $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
  tail -30 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"

# Same sources as the official image (deb822), all on Debian's own mirror.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security_mirror
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC

# The official slim image's tweaks: no docs/man/locales from later installs, no .deb cache,
# no translations. Images built on this base stay as small as on the real one.
cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/docker-no-recommends"
echo 'debian:bookworm-slim (local debootstrap)' >"$root/etc/finestra-base"

rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log \
       "$root"/usr/share/doc/*/changelog* "$root"/usr/share/man/* "$root"/usr/share/info/* \
       "$root"/tmp/* "$root"/var/tmp/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true

tar --numeric-owner -C "$root" -c . | "$docker" import \
  --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' - "$tag" >/dev/null
echo "imported $tag in $(( $(date +%s) - start )) s ($("$docker" image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
