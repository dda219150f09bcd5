#!/usr/bin/env bash
# Build an arm64 Debian 12 (bookworm) root file system with the appliance installed, on an x86 machine.
#
#   sudo deploy/image/build-root.sh OUT_DIR       build (or rebuild) the root in OUT_DIR
#
# Environment:
#   APPLIANCE_IMAGE_CACHE  cache for the base root tarball, apt archives and pip wheels
#                          (default /var/cache/appliance-image; kept between builds, so a rebuild is quick)
#   APPLIANCE_SHARED       the shared folder with models/ (default ../shared beside the source tree)
#   DEBIAN_MIRROR          default: the mirror this machine's apt uses, else http://deb.debian.org/debian
#
# How: mmdebstrap makes a bookworm arm64 root (the packages a van needs per deploy/system-packages.sh
# `device debian`, plus what a bootable image needs: systemd, the Debian arm64 kernel, GRUB for UEFI, and
# mosquitto for the image's boot test), running arm64 maintainer scripts through qemu-user (binfmt_misc).
# That base is cached as a tarball. Then deploy/install.sh --root installs the appliance exactly as on a
# device, the `device` extra included (systemd-python is compiled inside the root, by an emulated gcc).
set -euo pipefail

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { printf 'build-root: error: %s\n' "$*" >&2; exit 2; }
say() { printf 'build-root: %s\n' "$*" >&2; }

[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
OUT=${1:-}
[[ -n $OUT ]] || { usage >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || die "run as root (mmdebstrap, chroot, mount)"

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${APPLIANCE_IMAGE_CACHE:-/var/cache/appliance-image}
SHARED=${APPLIANCE_SHARED:-$(cd "$SRC/.." && pwd)/shared}
[[ -d $SHARED/models ]] || die "no model files in $SHARED/models: set APPLIANCE_SHARED"

# shellcheck source=deploy/image/lib.sh
. "$SRC/deploy/image/lib.sh"
ensure_binfmt

# What a bootable image needs beyond the van's own packages (deploy/system-packages.sh device debian).
IMAGE_PACKAGES=(
    systemd systemd-sysv udev dbus kmod iproute2       # init, devices, networking (systemd-networkd)
    linux-image-arm64 initramfs-tools                   # Debian's arm64 kernel (EFI stub) and initramfs
    grub-efi-arm64-bin                                  # a standalone GRUB EFI binary for the ESP
    e2fsprogs dosfstools                                # fsck of the root and the boot partition at boot
    cloud-guest-utils                                   # growpart: first boot grows the root partition
    mosquitto openssl                                   # the broker for the boot-to-alert test; certificates
)
mapfile -t DEVICE_PACKAGES < <("$SRC/deploy/system-packages.sh" --list device debian)
include=$(IFS=,; echo "${DEVICE_PACKAGES[*]},${IMAGE_PACKAGES[*]}")
# The base root is keyed by its package list, so changing the list rebuilds it.
key=$(printf '%s\n' "$include" "$(debian_mirror)" "$(cat "$SRC/deploy/image/files/initramfs-modules")" | sha256sum | cut -c1-12)
BASE=$CACHE/bookworm-arm64-base-$key.tar
mkdir -p "$CACHE"
if [[ ! -s $BASE ]]; then
    unmount_under "$BASE.d" && rm -rf "${BASE:?}.d"
    say "mmdebstrap: bookworm arm64 base ($BASE); maintainer scripts run under qemu-user, this takes minutes"
    t0=$SECONDS
    mkdir -p "$CACHE/apt-arm64"
    # The apt archives are synced in and out of the cache so that a rebuild downloads nothing.
    # The initramfs: a module list, not MODULES=most (see files/initramfs-modules), set before the kernel
    # package's postinst builds it. /usr/share/initramfs-tools/modules.d/ belongs to no package's conffiles.
    mmdebstrap --arch=arm64 --variant=minbase --include="$include" \
        --setup-hook="mkdir -p \"\$1/etc/initramfs-tools/conf.d\" \"\$1/usr/share/initramfs-tools/modules.d\" && echo MODULES=list > \"\$1/etc/initramfs-tools/conf.d/appliance.conf\" && cp $SRC/deploy/image/files/initramfs-modules \"\$1/usr/share/initramfs-tools/modules.d/appliance\"" \
        --setup-hook="mkdir -p \"\$1/var/cache/apt/archives\" && cp -a $CACHE/apt-arm64/. \"\$1/var/cache/apt/archives/\" 2>/dev/null || true" \
        --customize-hook="cp -a \"\$1/var/cache/apt/archives/.\" $CACHE/apt-arm64/ 2>/dev/null || true" \
        --skip=download/empty --skip=essential/unlink \
        --format=directory bookworm "$BASE.d" "$(debian_mirror)"
    tar -C "$BASE.d" -cf "$BASE.tmp" . && mv "$BASE.tmp" "$BASE" && rm -rf "${BASE:?}.d"
    say "base root built in $((SECONDS - t0)) s"
fi

t0=$SECONDS
unmount_under "$OUT"
rm -rf "${OUT:?}" && mkdir -p "$OUT"
tar -C "$OUT" -xf "$BASE"
say "base root unpacked into $OUT"

# pip inside the root trusts the CA bundle this machine's pip uses (a proxy's CA, say) for the build only:
# it is copied to a temporary path and removed at the end, never added to the image's trust store.
cp -L "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$OUT/var/tmp/build-ca.crt"
export PIP_CERT=/var/tmp/build-ca.crt
trap 'rm -f "$OUT/var/tmp/build-ca.crt"' EXIT

# The lock, installed exactly as the device install does. Until deploy/install.sh itself installs from
# the lock (pip --require-hashes, then the package --no-deps), seed its venv from the lock first, so the
# installer's own pip finds every dependency pinned and satisfied and adds only the package.
LOCK=$SRC/deploy/lock/linux-aarch64-py3.11-device.txt
if ! grep -q -- '--require-hashes' "$SRC/deploy/install.sh"; then
    say "seeding /opt/appliance/.venv from $(basename "$LOCK") (--require-hashes)"
    in_root "$OUT" "$CACHE" python3 -m venv /opt/appliance/.venv
    cp "$LOCK" "$OUT/tmp/lock.txt"
    in_root "$OUT" "$CACHE" /opt/appliance/.venv/bin/pip install --quiet --disable-pip-version-check \
        --require-hashes -r /tmp/lock.txt
    rm -f "$OUT/tmp/lock.txt"
fi
"$SRC/deploy/install.sh" --root "$OUT" --platform debian --models "$SHARED/models" --cache "$CACHE/install"
say "appliance installed into the arm64 root in $((SECONDS - t0)) s"
