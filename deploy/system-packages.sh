#!/usr/bin/env bash
# The system (apt) packages the appliance needs, for one purpose. The one list, used by the Makefile
# (`make install` / `make demo`: dev; `make test`: test), `.ci/run` (test) and `deploy/install.sh` (device).
#
#   deploy/system-packages.sh dev      build the venv from the lock and run the demo van
#   deploy/system-packages.sh test     dev + what the test suite drives: broker tools, Chromium, chronyd, ...
#   deploy/system-packages.sh device [pi|jetson|debian]   what a van runs (install.sh)
#   deploy/system-packages.sh image    build the arm64 root and disk image and boot it (make arm64-root, image)
#   deploy/system-packages.sh --list PROFILE [PLATFORM]    print the list and do nothing
#
# Installs only what is missing, with apt-get as root, with sudo otherwise; without either it stops and
# prints the one command to run. No service is started by the install (Debian's policy-rc.d switch):
# the tests start their own brokers and time servers, and chronyd must not steer a developer's clock.
set -euo pipefail

# Building the venv: python3-venv for `python3 -m venv`; gcc, python3-dev, pkg-config and libsystemd-dev for
# systemd-python (sdist-only: it compiles, for sd_notify and journald on the device and in the tests);
# mosquitto and openssl for the demo's TLS broker and its certificates.
DEV=(python3-venv python3-dev gcc pkg-config libsystemd-dev mosquitto openssl ca-certificates)
# The tests: mosquitto_pub/sub, sqlite3 (no-trace checks read raw files), Chromium (console in a real
# browser), systemd (systemd-analyze verify of the unit), debootstrap (installing into a fresh Debian root),
# chrony and faketime (the clock self-test against real time servers, one shifted).
TEST=(mosquitto-clients sqlite3 chromium systemd debootstrap chrony faketime)
# A van: the interpreter and venv, systemd-python's build, TLS roots, /bin/kill for ExecReload, chrony.
DEVICE=(python3 python3-venv python3-pip python3-dev gcc pkg-config libsystemd-dev ca-certificates procps chrony)
# The arm64 root and image (deploy/image/): qemu-user through binfmt_misc for arm64 maintainer scripts and
# pip, mmdebstrap, the image's file systems without loop mounts (mke2fs -d, mtools), and for the boot test
# qemu-system-aarch64 with its UEFI firmware (AAVMF), and mosquitto/openssl for the control room's side.
IMAGE=(qemu-user-static binfmt-support mmdebstrap arch-test e2fsprogs dosfstools mtools fdisk uuid-runtime
       qemu-system-arm qemu-efi-aarch64 qemu-utils mosquitto mosquitto-clients openssl)
DEVICE_PI=(python3-picamera2 python3-libcamera rpicam-apps-lite)
DEVICE_JETSON=(gstreamer1.0-tools nvidia-l4t-gstreamer)

say() { printf 'system-packages: %s\n' "$*" >&2; }

list_only=0
if [[ ${1:-} == --list ]]; then list_only=1; shift; fi
profile=${1:-}
platform=${2:-debian}
case $profile in
    dev) wanted=("${DEV[@]}") ;;
    test) wanted=("${DEV[@]}" "${TEST[@]}") ;;
    image) wanted=("${DEV[@]}" "${IMAGE[@]}") ;;
    device)
        wanted=("${DEVICE[@]}")
        case $platform in
            pi) wanted+=("${DEVICE_PI[@]}") ;;
            jetson) wanted+=("${DEVICE_JETSON[@]}") ;;
            debian) ;;
            *) say "unknown platform '$platform' (pi, jetson or debian)"; exit 2 ;;
        esac ;;
    *) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
if ((list_only)); then printf '%s\n' "${wanted[@]}"; exit 0; fi

if ! command -v dpkg-query >/dev/null; then
    say "this is not a Debian-based system: install the equivalents of: ${wanted[*]}"
    exit 1
fi
missing=()
for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]})) || exit 0

as_root=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null; then
        as_root=(sudo)
    else
        say "missing system packages, and neither root nor sudo here. Run as root:"
        say "  apt-get update && apt-get install -y ${missing[*]}"
        exit 1
    fi
fi
say "installing ${missing[*]}"
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e $policy ]]; then
    "${as_root[@]}" sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
    made_policy=1
fi
cleanup() { if ((made_policy)); then "${as_root[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# A van gets only what it needs; a developer's machine also gets Chromium's recommended fonts.
recommends=(); [[ $profile == device ]] && recommends=(--no-install-recommends)
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${recommends[@]}" "${missing[@]}" >/dev/null
say "installed ${#missing[@]} package(s)"
