#!/bin/sh
# A stand-in for python:3.11-slim-bookworm built from Debian's own packages, for machines that
# cannot reach an image registry (as the test machines): Debian bookworm minbase with python3.
#
#   deploy/debian-base-image.sh [IMAGE]       # default localhost/idp-debian-python:bookworm
#   buildah bud --build-arg BASE=localhost/idp-debian-python:bookworm ...
#
# Needs debootstrap and buildah, as root. The root file system is kept as a tarball under
# $IDP_IMAGE_CACHE (default /var/cache/idp-image-base), so the image is re-imported from it
# without a second debootstrap when container storage was wiped; nothing happens when the image
# already exists.
set -eu
IMAGE=${1:-localhost/idp-debian-python:bookworm}
CACHE=${IDP_IMAGE_CACHE:-/var/cache/idp-image-base}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if buildah inspect --type image "$IMAGE" >/dev/null 2>&1; then
    exit 0
fi
mkdir -p "$CACHE"
# Two test runs starting at once: the second waits for the first's base instead of racing it.
exec 9>"$CACHE/.lock"
flock 9
if buildah inspect --type image "$IMAGE" >/dev/null 2>&1; then
    exit 0
fi
if [ ! -s "$CACHE/rootfs.tar" ]; then
    rm -rf "$CACHE/rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$CACHE/rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
        || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
    # Downloaded packages, indexes, manuals and translations are of no use in an image (the
    # official slim images leave them out too); copyright files stay.
    rm -rf "$CACHE"/rootfs/var/cache/apt/archives/*.deb "$CACHE"/rootfs/var/lib/apt/lists/* \
        "$CACHE"/rootfs/usr/share/man/* "$CACHE"/rootfs/usr/share/locale/* \
        "$CACHE"/rootfs/usr/share/info/*
    tar -C "$CACHE/rootfs" --numeric-owner -cf "$CACHE/rootfs.tar.part" .
    mv "$CACHE/rootfs.tar.part" "$CACHE/rootfs.tar"
    rm -rf "$CACHE/rootfs"
fi
container=$(buildah from scratch)
trap 'buildah rm "$container" >/dev/null 2>&1 || true' EXIT
buildah add --quiet "$container" "$CACHE/rootfs.tar" / >/dev/null
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --cmd /bin/sh "$container"
buildah commit --quiet --rm "$container" "$IMAGE" >/dev/null
trap - EXIT
