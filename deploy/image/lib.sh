# Shared helpers for deploy/image/*.sh (sourced, not run). Needs: set -euo pipefail in the caller.

# arm64 binaries run through qemu-user: binfmt_misc must be mounted and the qemu-aarch64 handler enabled.
ensure_binfmt() {
    if [[ ! -e /proc/sys/fs/binfmt_misc/status ]]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    fi
    if [[ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
        update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || update-binfmts --enable
    fi
    [[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] \
        || { echo "no qemu-aarch64 binfmt handler: deploy/system-packages.sh image" >&2; exit 2; }
}

# The Debian mirror this machine's apt already uses (deb822 or one-line sources), else deb.debian.org.
debian_mirror() {
    if [[ -n ${DEBIAN_MIRROR:-} ]]; then echo "$DEBIAN_MIRROR"; return; fi
    local uri
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
        | grep -oE '^(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)[^[:space:]]+/debian/?$' \
        | awk '{print $NF}' | head -1)
    echo "${uri:-http://deb.debian.org/debian}"
}

# Lazily unmount everything below a directory (deepest first): never rm -rf a root with /dev bound inside.
unmount_under() {
    local dir m
    [[ -d ${1:-} ]] || return 0
    dir=$(cd "$1" && pwd)
    awk -v d="$dir/" '(($2 "/") ~ "^" d) {print $2}' /proc/mounts | sort -r | while read -r m; do
        umount -l "$m" || true
    done
}

# Run a command in an arm64 root under chroot with /proc, /sys, /dev and the pip cache mounted.
#   in_root ROOT CACHE CMD...
in_root() {
    local root=$1 cache=$2 rc=0 m
    shift 2
    mkdir -p "$cache/pip" "$root/root/.cache/pip"
    mount -t proc proc "$root/proc"
    mount --bind /sys "$root/sys"
    mount --bind /dev "$root/dev"
    mount --bind /dev/pts "$root/dev/pts"
    mount --bind "$cache/pip" "$root/root/.cache/pip"
    cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive ${PIP_CERT:+PIP_CERT=$PIP_CERT} chroot "$root" "$@" || rc=$?
    for m in root/.cache/pip dev/pts dev sys proc; do umount -l "$root/$m" || true; done
    return $rc
}
