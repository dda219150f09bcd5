#!/usr/bin/env bash
# Install (or uninstall) the LFR appliance on a Raspberry Pi 5 (Raspberry Pi OS Bookworm), a Debian 12
# machine, or a Jetson Orin (JetPack 6 = Ubuntu 22.04). Idempotent: running it again repairs and upgrades.
#
#   sudo deploy/install.sh                      install from this source tree, enable the service
#   sudo deploy/install.sh --wheel FILE.whl     install that wheel instead of the source tree
#   sudo deploy/install.sh --models DIR         take model files from DIR (default $APPLIANCE_SHARED/models,
#                                               else the MediaPipe models are fetched from PyPI)
#   sudo deploy/install.sh --uninstall          remove the program, unit and rules; keep data, config, user
#   sudo deploy/install.sh --uninstall --purge  also crypto-erase /var/lib/appliance, /etc/appliance, the user
#   sudo deploy/install.sh --root DIR [...]     do all of the above inside the root file system DIR (chroot),
#                                               e.g. a debootstrap root or a mounted SD-card image
#
# What it does: apt prerequisites; the system user `appliance`; /opt/appliance (program, venv, models),
# /var/lib/appliance (0700, data), /etc/appliance (config); a venv (--system-site-packages on a Pi for
# picamera2/libcamera, and on a Jetson for the GStreamer-enabled OpenCV); the package and the models; the
# systemd unit (enabled with systemctl when systemd runs, else by creating the wants symlink); the udev
# rule and the chrony drop-in. It does not start the service: provision first (docs/install.md).
set -euo pipefail

PREFIX=/opt/appliance
VENV=$PREFIX/.venv
DATA_DIR=/var/lib/appliance
CONF_DIR=/etc/appliance
UNIT_DIR=/etc/systemd/system
USER_NAME=appliance

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$SCRIPT_DIR/.." && pwd)

ROOT=""
WHEEL=""
MODELS=""
CACHE=""
UNINSTALL=0
PURGE=0
NO_APT=0
PLATFORM=auto
ALLOW_ANY_OS=0

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: error: %s\n' "$*" >&2; exit 2; }

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while (($#)); do
    case "$1" in
        --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
        --wheel) WHEEL=${2:?--wheel needs a file}; shift 2 ;;
        --models) MODELS=${2:?--models needs a directory}; shift 2 ;;
        --cache) CACHE=${2:?--cache needs a directory}; shift 2 ;;
        --platform) PLATFORM=${2:?--platform needs pi, jetson or debian}; shift 2 ;;
        --uninstall) UNINSTALL=1; shift ;;
        --purge) PURGE=1; shift ;;
        --no-apt) NO_APT=1; shift ;;
        --any-os) ALLOW_ANY_OS=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done

[[ $(id -u) -eq 0 ]] || die "run as root (sudo $0 ...)"

# ------------------------------------------------------------------------------------------------------
# --root DIR: copy what is needed into DIR and run this same script there under chroot.
# ------------------------------------------------------------------------------------------------------
R_ROOT=""
R_STAGE=/var/tmp/appliance-install
R_MOUNTS=()
R_POLICY=""
root_cleanup() {
    local i
    for ((i = ${#R_MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${R_MOUNTS[i]}" 2>/dev/null || true; done
    R_MOUNTS=()
    [[ -n $R_POLICY ]] && rm -f "$R_POLICY"
    if [[ -n $R_ROOT ]]; then rm -rf "${R_ROOT:?}$R_STAGE" "${R_ROOT:?}$R_STAGE.models"; fi
}
run_in_root() {
    local args=() m rc=0
    R_ROOT=$(cd "$ROOT" && pwd) || die "--root $ROOT: no such directory"
    [[ -x $R_ROOT/bin/sh ]] || die "--root $R_ROOT does not look like a root file system (no /bin/sh)"
    [[ $R_ROOT != / ]] || die "--root / is the running system: run without --root"
    trap root_cleanup EXIT
    say "installing into root $R_ROOT (chroot)"
    rm -rf "${R_ROOT:?}$R_STAGE" && mkdir -p "$R_ROOT$R_STAGE"
    # The source tree, without venvs, caches, build output or installed model files.
    tar -C "$SRC" --exclude=./.venv --exclude=./.git --exclude='*/__pycache__' --exclude=./build \
        --exclude='*.egg-info' --exclude=./reports --exclude=./out --exclude='./models/*/*.tflite' \
        --exclude='./models/*/*.onnx' -cf - . | tar -C "$R_ROOT$R_STAGE" -xf -
    args=(--platform "$PLATFORM")
    ((UNINSTALL)) && args+=(--uninstall)
    ((PURGE)) && args+=(--purge)
    ((NO_APT)) && args+=(--no-apt)
    ((ALLOW_ANY_OS)) && args+=(--any-os)
    if [[ -n $MODELS && $UNINSTALL -eq 0 ]]; then
        mkdir -p "$R_ROOT$R_STAGE.models" && cp -a "$MODELS/." "$R_ROOT$R_STAGE.models/"
        args+=(--models "$R_STAGE.models")
    fi
    if [[ -n $WHEEL ]]; then
        cp "$WHEEL" "$R_ROOT$R_STAGE/" && args+=(--wheel "$R_STAGE/$(basename "$WHEEL")")
    fi
    # Name resolution inside the root.
    cp -L /etc/resolv.conf "$R_ROOT/etc/resolv.conf" 2>/dev/null || true
    for m in proc sys dev dev/pts; do
        mkdir -p "$R_ROOT/$m"
        if ! mountpoint -q "$R_ROOT/$m"; then
            if [[ $m == proc ]]; then mount -t proc proc "$R_ROOT/proc"; else mount --bind "/$m" "$R_ROOT/$m"; fi
            R_MOUNTS+=("$R_ROOT/$m")
        fi
    done
    # Optional shared caches (apt archives and pip wheels) so repeated installs of images are quick.
    if [[ -n $CACHE ]]; then
        mkdir -p "$CACHE/apt/partial" "$CACHE/pip" "$R_ROOT/var/cache/apt/archives" "$R_ROOT/root/.cache/pip"
        mount --bind "$CACHE/apt" "$R_ROOT/var/cache/apt/archives" && R_MOUNTS+=("$R_ROOT/var/cache/apt/archives")
        mount --bind "$CACHE/pip" "$R_ROOT/root/.cache/pip" && R_MOUNTS+=("$R_ROOT/root/.cache/pip")
    fi
    # No service may start inside the root (Debian's policy-rc.d convention).
    if [[ ! -e $R_ROOT/usr/sbin/policy-rc.d ]]; then
        R_POLICY=$R_ROOT/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' > "$R_POLICY" && chmod 755 "$R_POLICY"
    fi
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive ${PIP_CERT:+PIP_CERT=$PIP_CERT} ${PIP_INDEX_URL:+PIP_INDEX_URL=$PIP_INDEX_URL} \
        chroot "$R_ROOT" /bin/bash "$R_STAGE/deploy/install.sh" "${args[@]}" || rc=$?
    exit $rc
}
if [[ -n $ROOT ]]; then
    run_in_root
fi

# ------------------------------------------------------------------------------------------------------
# Platform detection
# ------------------------------------------------------------------------------------------------------
detect_platform() {
    local id="" version="" model=""
    if [[ -r /etc/os-release ]]; then
        # shellcheck disable=SC1091
        id=$(. /etc/os-release && echo "${ID:-}")
        version=$(. /etc/os-release && echo "${VERSION_ID:-}")
    fi
    [[ -r /proc/device-tree/model ]] && model=$(tr -d '\0' < /proc/device-tree/model)
    if [[ $PLATFORM == auto ]]; then
        if [[ $model == *"Raspberry Pi"* || -e /etc/rpi-issue ]]; then
            PLATFORM=pi
        elif [[ -e /etc/nv_tegra_release || $model == *Jetson* || $model == *Orin* ]]; then
            PLATFORM=jetson
        else
            PLATFORM=debian
        fi
    fi
    case "$PLATFORM:$id:$version" in
        pi:debian:12|pi:raspbian:12) OS_DESC="Raspberry Pi OS Bookworm ($model)" ;;
        jetson:ubuntu:22.04) OS_DESC="JetPack 6 / Ubuntu 22.04 ($model)" ;;
        debian:debian:12) OS_DESC="Debian 12 Bookworm" ;;
        pi:*|jetson:*|debian:*)
            ((ALLOW_ANY_OS)) || die "unsupported system '$id $version' for platform $PLATFORM: expected Raspberry Pi OS Bookworm, Debian 12 or JetPack 6 (Ubuntu 22.04); --any-os to try anyway"
            OS_DESC="$id $version (unsupported, --any-os)" ;;
        *) die "--platform must be pi, jetson or debian, not '$PLATFORM'" ;;
    esac
    say "platform: $PLATFORM, $OS_DESC"
}

systemd_running() { [[ -d /run/systemd/system ]]; }

# ------------------------------------------------------------------------------------------------------
# Uninstall
# ------------------------------------------------------------------------------------------------------
uninstall() {
    if systemd_running && systemctl list-unit-files appliance.service >/dev/null 2>&1; then
        systemctl disable --now appliance.service 2>/dev/null || true
    fi
    rm -f "$UNIT_DIR/multi-user.target.wants/appliance.service"
    rm -f "$UNIT_DIR/appliance.service"
    rm -rf "$UNIT_DIR/appliance.service.d"
    rm -f /etc/udev/rules.d/99-lfr-camera.rules /etc/chrony/conf.d/appliance.conf
    rm -f /usr/local/bin/appliance
    rm -rf "$PREFIX"
    systemd_running && systemctl daemon-reload || true
    if ((PURGE)); then
        # Crypto-erase: overwrite the key files before deleting everything else.
        if [[ -d $DATA_DIR ]]; then
            find "$DATA_DIR" -type f \( -name '*.key' -o -name '*.salt' \) -exec shred -u {} + 2>/dev/null || true
            rm -rf "$DATA_DIR"
        fi
        rm -rf "$CONF_DIR"
        if id "$USER_NAME" >/dev/null 2>&1; then userdel "$USER_NAME" 2>/dev/null || true; fi
        getent group "$USER_NAME" >/dev/null && groupdel "$USER_NAME" 2>/dev/null || true
        say "uninstalled and purged (keys shredded, data, config and user removed)"
    else
        say "uninstalled; kept $DATA_DIR, $CONF_DIR and the user '$USER_NAME' (--purge removes them)"
    fi
}

if ((UNINSTALL)); then
    uninstall
    exit 0
fi

detect_platform

# ------------------------------------------------------------------------------------------------------
# 1. apt prerequisites
# ------------------------------------------------------------------------------------------------------
# The one list of system packages (deploy/system-packages.sh, shared with the Makefile and CI).
if ((NO_APT)); then
    say "skipping apt (--no-apt)"
else
    "$SRC/deploy/system-packages.sh" device "$PLATFORM"
    # JetPack may already ship an OpenCV with Python bindings (nvidia-opencv); Ubuntu's python3-opencv would
    # conflict with it, so it is only installed when the system Python has no cv2 at all. Both have GStreamer.
    if [[ $PLATFORM == jetson ]] && ! python3 -c 'import cv2' 2>/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-opencv >/dev/null
    fi
    say "apt: prerequisites present"
fi

# ------------------------------------------------------------------------------------------------------
# 2. user and directories
# ------------------------------------------------------------------------------------------------------
getent group video >/dev/null || groupadd --system video
if ! id "$USER_NAME" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "$DATA_DIR" --no-create-home \
        --shell /usr/sbin/nologin --comment "LFR appliance daemon" "$USER_NAME"
    say "created system user $USER_NAME"
fi
usermod -a -G video "$USER_NAME"
if [[ $PLATFORM == jetson ]]; then
    getent group render >/dev/null && usermod -a -G render "$USER_NAME"
fi

install -d -o root -g root -m 0755 "$PREFIX" "$PREFIX/models"
install -d -o "$USER_NAME" -g "$USER_NAME" -m 0700 "$DATA_DIR"
chown "$USER_NAME:$USER_NAME" "$DATA_DIR" && chmod 0700 "$DATA_DIR"  # repair if it existed with other modes
install -d -o root -g "$USER_NAME" -m 0750 "$CONF_DIR"

# ------------------------------------------------------------------------------------------------------
# 3. venv and the package
# ------------------------------------------------------------------------------------------------------
venv_args=()
[[ $PLATFORM == pi || $PLATFORM == jetson ]] && venv_args+=(--system-site-packages)
want_site=false; ((${#venv_args[@]})) && want_site=true
if [[ -x $VENV/bin/python ]] && ! grep -q "include-system-site-packages = $want_site" "$VENV/pyvenv.cfg"; then
    say "venv exists with other site-packages visibility: recreating"
    rm -rf "$VENV"
fi
if [[ ! -x $VENV/bin/python ]]; then
    python3 -m venv "${venv_args[@]}" "$VENV"
    say "created venv $VENV ${venv_args[*]}"
fi

# The source tree is kept in /opt/appliance/src (docs, deploy files and the model manifest ship with it).
if [[ $SRC != "$PREFIX/src" ]]; then
    rm -rf "$PREFIX/src.new"
    mkdir -p "$PREFIX/src.new"
    tar -C "$SRC" --exclude=./.venv --exclude=./.git --exclude='*/__pycache__' --exclude=./build \
        --exclude='*.egg-info' --exclude=./reports --exclude=./out --exclude='./models/*/*.tflite' \
        --exclude='./models/*/*.onnx' -cf - . | tar -C "$PREFIX/src.new" -xf -
    rm -rf "$PREFIX/src" && mv "$PREFIX/src.new" "$PREFIX/src"
fi

# Every dependency from the device lock, each file checked against its sha256 (deploy/lock/, `make lock`): the
# van runs the versions the threshold was calibrated with. Then the appliance itself, resolving nothing more.
LOCK_FILE=$("$VENV/bin/python" "$PREFIX/src/appliance/devtools/lockfiles.py" path --device) \
    || die "no dependency lock for this machine (see deploy/lock/)"
target="$PREFIX/src"
[[ -n $WHEEL ]] && target="$(cd "$(dirname "$WHEEL")" && pwd)/$(basename "$WHEEL")"
pip_args=(--quiet --disable-pip-version-check)
say "pip: installing the lock $(basename "$LOCK_FILE")"
"$VENV/bin/pip" install "${pip_args[@]}" --require-hashes -r "$LOCK_FILE"
say "pip: installing $target"
"$VENV/bin/pip" install "${pip_args[@]}" --use-pep517 --no-deps "$target"
if [[ $PLATFORM == jetson ]]; then
    # The pip OpenCV has no GStreamer; JetPack's python3-opencv (visible through system site-packages) has.
    "$VENV/bin/pip" uninstall --quiet -y opencv-python-headless opencv-python 2>/dev/null || true
fi

# A wrapper on PATH for technicians: the installed package finds the models through APPLIANCE_MODELS.
cat > /usr/local/bin/appliance <<EOF
#!/bin/sh
# Installed by deploy/install.sh: run the appliance from its venv with the installed models.
APPLIANCE_MODELS="\${APPLIANCE_MODELS:-$PREFIX/models}" exec $VENV/bin/appliance "\$@"
EOF
chmod 0755 /usr/local/bin/appliance

# ------------------------------------------------------------------------------------------------------
# 4. models
# ------------------------------------------------------------------------------------------------------
install -m 0644 "$PREFIX/src/models/manifest.toml" "$PREFIX/models/manifest.toml"
models_args=()
if [[ -n $MODELS ]]; then
    models_args+=(--source "$MODELS")
elif [[ -n ${APPLIANCE_SHARED:-} && -d $APPLIANCE_SHARED/models ]]; then
    models_args+=(--source "$APPLIANCE_SHARED/models")
fi
# The background sets (score normalisation) come calibrated from the build machine's models/ in the source tree.
models_args+=(--background-source "$PREFIX/src/models")
APPLIANCE_MODELS="$PREFIX/models" "$VENV/bin/appliance" models install "${models_args[@]}"
chmod -R a+rX "$PREFIX/models"

# ------------------------------------------------------------------------------------------------------
# 5. unit, udev rule, chrony drop-in
# ------------------------------------------------------------------------------------------------------
install -m 0644 "$PREFIX/src/deploy/systemd/appliance.service" "$UNIT_DIR/appliance.service"
if [[ $PLATFORM == jetson ]]; then
    install -d -m 0755 "$UNIT_DIR/appliance.service.d"
    install -m 0644 "$PREFIX/src/deploy/systemd/appliance.service.d/jetson.conf" "$UNIT_DIR/appliance.service.d/"
fi
install -d -m 0755 /etc/udev/rules.d
install -m 0644 "$PREFIX/src/firmware-config/udev/99-lfr-camera.rules" /etc/udev/rules.d/99-lfr-camera.rules
if [[ -d /etc/chrony ]]; then
    install -d -m 0755 /etc/chrony/conf.d
    install -m 0644 "$PREFIX/src/firmware-config/chrony/appliance.conf" /etc/chrony/conf.d/appliance.conf
fi

if systemd_running; then
    systemctl daemon-reload
    systemctl enable appliance.service
    udevadm control --reload 2>/dev/null || true
    systemctl try-restart chrony.service 2>/dev/null || true
else
    # No running systemd (a chroot, an image being built): enable by creating the symlink systemctl would.
    install -d -m 0755 "$UNIT_DIR/multi-user.target.wants"
    ln -sfn "$UNIT_DIR/appliance.service" "$UNIT_DIR/multi-user.target.wants/appliance.service"
    say "systemd is not running: enabled appliance.service by symlink"
fi

say "installed $(APPLIANCE_MODELS=$PREFIX/models "$VENV/bin/appliance" --version) on $OS_DESC"
if [[ ! -e $CONF_DIR/appliance.toml ]]; then
    say "next: sudo appliance provision --device-id ID --broker mqtts://HOST:8883 --control-room-key FILE"
    say "      then: sudo appliance selftest ; sudo systemctl start appliance   (docs/install.md)"
fi
