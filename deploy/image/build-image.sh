#!/usr/bin/env bash
# Build a bootable arm64 disk image (GPT: FAT boot partition + ext4 root) from an arm64 root made by
# deploy/image/build-root.sh. Generic arm64 UEFI: Debian's arm64 kernel, a standalone GRUB as
# EFI/BOOT/BOOTAA64.EFI; boots on any UEFI arm64 machine and in qemu-system-aarch64 -M virt.
#
#   sudo deploy/image/build-image.sh ROOT_DIR OUT.img [--overlay DIR] [--customize SCRIPT] [--enable UNIT]
#
#   --overlay DIR       copy DIR's tree over the image's root (e.g. a test broker's configuration)
#   --customize SCRIPT  run SCRIPT IMAGE_ROOT on this machine after the overlay (e.g. fix owners)
#   --enable UNIT       enable another systemd unit in the image (repeatable)
#
# In the image: appliance.service enabled (hardened, Type=notify, watchdog), starting only once provisioned;
# appliance-firstboot.service, which provisions from appliance/provision.toml on the boot partition
# (docs/install.md); appliance-growroot.service, which grows the root partition to fill the disk it is
# written to (growpart + resize2fs, every boot, a no-op once it does); systemd-networkd with DHCP on wired
# interfaces; no login (root is locked), no SSH; mosquitto installed (the package) but disabled. ROOT_DIR is
# left as it was: the image is built from a copy.
# No loop device or mount is needed: mke2fs -d fills the root file system, mtools the FAT partition.
set -euo pipefail

usage() { sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { printf 'build-image: error: %s\n' "$*" >&2; exit 2; }
say() { printf 'build-image: %s\n' "$*" >&2; }

ROOT="" OUT="" OVERLAY="" CUSTOMIZE=""
ENABLE=()
while (($#)); do
    case "$1" in
        --overlay) OVERLAY=${2:?}; shift 2 ;;
        --customize) CUSTOMIZE=${2:?}; shift 2 ;;
        --enable) ENABLE+=("${2:?}"); shift 2 ;;
        -h|--help) usage; exit 0 ;;
        -*) die "unknown option $1" ;;
        *) if [[ -z $ROOT ]]; then ROOT=$1; elif [[ -z $OUT ]]; then OUT=$1; else die "too many arguments"; fi; shift ;;
    esac
done
[[ -n $ROOT && -n $OUT ]] || { usage >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || die "run as root (the image's files keep their owners)"
[[ -x $ROOT/opt/appliance/.venv/bin/appliance ]] || die "$ROOT has no appliance installed: deploy/image/build-root.sh first"
# An image must never carry a device's identity: keys are made on each device at first boot.
if [[ -e $ROOT/etc/appliance/appliance.toml ]] || [[ -n $(ls -A "$ROOT/var/lib/appliance" 2>/dev/null) ]]; then
    die "$ROOT is provisioned (/etc/appliance/appliance.toml or /var/lib/appliance not empty): rebuild it"
fi

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FILES=$SRC/deploy/image/files
# shellcheck source=deploy/image/lib.sh
. "$SRC/deploy/image/lib.sh"
ensure_binfmt
for tool in mke2fs mkfs.vfat mcopy mmd sfdisk uuidgen; do
    command -v $tool >/dev/null || die "$tool missing: deploy/system-packages.sh image"
done

t0=$SECONDS
OUT_DIR=$(cd "$(dirname "$OUT")" && pwd)
WORK=$(mktemp -d "$OUT_DIR/.image-build.XXXXXX")
cleanup() { unmount_under "$WORK"; rm -rf "${WORK:?}"; }
trap cleanup EXIT
R=$WORK/root
cp -a -x "$ROOT" "$R"   # -x: never what is mounted inside it (a chroot's /proc, /dev)

ROOT_UUID=$(uuidgen)
ESP_ID=$(uuidgen | tr -d - | cut -c1-8 | tr a-f A-F)
ESP_UUID="${ESP_ID:0:4}-${ESP_ID:4:4}"

# --- the root file system -------------------------------------------------------------------------------
echo lfr-van > "$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tlfr-van\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"
cat > "$R/etc/fstab" <<FSTAB
# Written by deploy/image/build-image.sh
UUID=$ROOT_UUID  /          ext4  errors=remount-ro  0 1
UUID=$ESP_UUID   /boot/efi  vfat  umask=0077,nofail,x-systemd.device-timeout=10min  0 2
FSTAB
# The boot partition holds the provisioning file: wait for it longer than systemd's 90 s (a slow card, or
# udev's first pass under emulation took longer in the image test); nofail keeps a boot without it going.
mkdir -p "$R/boot/efi" "$R/boot/grub"
# The build machine's resolver must not ship; the van gets its resolver from its network (DHCP).
rm -f "$R/etc/resolv.conf" && : > "$R/etc/resolv.conf"
install -m 0644 "$FILES/20-wired.network" "$R/etc/systemd/network/20-wired.network"
install -m 0644 "$FILES/appliance-firstboot.service" "$R/etc/systemd/system/appliance-firstboot.service"
install -m 0755 "$SRC/deploy/image/appliance-upgrade" "$R/usr/local/sbin/appliance-upgrade"
install -m 0755 "$FILES/appliance-growroot" "$R/usr/local/sbin/appliance-growroot"
install -m 0644 "$FILES/appliance-growroot.service" "$R/etc/systemd/system/appliance-growroot.service"
[[ -x $R/usr/bin/growpart ]] || die "growpart missing in $ROOT (cloud-guest-utils): rebuild it with build-root.sh"
install -d "$R/etc/systemd/system/appliance.service.d"
install -m 0644 "$FILES/image.conf" "$R/etc/systemd/system/appliance.service.d/image.conf"
# Debian keeps /vmlinuz and /initrd.img pointing at the newest kernel; without them, name this one.
kernel=/vmlinuz initrd=/initrd.img
if [[ ! -e $R/vmlinuz || ! -e $R/initrd.img ]]; then
    kver=$(ls "$R/boot" | sed -n 's/^vmlinuz-//p' | sort -V | tail -1)
    [[ -n $kver && -e $R/boot/initrd.img-$kver ]] || die "no kernel and initramfs in $R/boot"
    kernel=/boot/vmlinuz-$kver initrd=/boot/initrd.img-$kver
fi
sed -e "s/@ROOT_UUID@/$ROOT_UUID/g" -e "s|/vmlinuz |$kernel |" -e "s|/initrd.img$|$initrd|" "$FILES/grub.cfg" \
    > "$R/boot/grub/grub.cfg"
passwd_field=$(awk -F: '$1=="root"{print $2}' "$R/etc/shadow")
[[ $passwd_field == '*' || $passwd_field == '!'* ]] || die "root has a password in the root file system"

systemctl --root="$R" enable systemd-networkd.service systemd-networkd-wait-online.service \
    appliance-growroot.service appliance-firstboot.service appliance.service >/dev/null 2>&1
systemctl --root="$R" disable mosquitto.service >/dev/null 2>&1 || true
systemctl --root="$R" is-enabled appliance.service >/dev/null || die "appliance.service is not enabled"

if [[ -n $OVERLAY ]]; then
    cp -a "$OVERLAY/." "$R/"
    say "overlay $OVERLAY copied in"
fi
[[ -n $CUSTOMIZE ]] && "$CUSTOMIZE" "$R"
for unit in "${ENABLE[@]}"; do systemctl --root="$R" enable "$unit" >/dev/null 2>&1; done

# A standalone GRUB (its modules in a memdisk) that finds the root by UUID and reads /boot/grub/grub.cfg.
printf 'search --no-floppy --fs-uuid --set=root %s\nset prefix=($root)/boot/grub\nconfigfile /boot/grub/grub.cfg\n' \
    "$ROOT_UUID" > "$R/tmp/grub-embed.cfg"
in_root "$R" "$WORK" grub-mkstandalone -O arm64-efi -o /tmp/BOOTAA64.EFI \
    --modules="part_gpt ext2 fat search search_fs_uuid linux configfile normal" \
    "boot/grub/grub.cfg=/tmp/grub-embed.cfg"
mv "$R/tmp/BOOTAA64.EFI" "$WORK/BOOTAA64.EFI"
rm -f "$R/tmp/grub-embed.cfg"
rm -rf "${R:?}/root/.cache" "$R/var/tmp/"* "$R/var/cache/apt/archives/"*.deb

# --- partitions ------------------------------------------------------------------------------------------
ESP_MIB=256
used_mib=$(du -sm --apparent-size "$R" | cut -f1)
ROOT_MIB=$(( (used_mib * 13 / 10 + 1024 + 63) / 64 * 64 ))   # 30 % + 1 GiB free for data and upgrades
say "root uses ${used_mib} MiB: root partition ${ROOT_MIB} MiB"
mkfs.vfat -C -F 32 -n LFR-BOOT -i "$ESP_ID" "$WORK/esp.img" $((ESP_MIB * 1024)) >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$WORK/esp.img" ::/EFI ::/EFI/BOOT ::/appliance ::/appliance/out
mcopy -i "$WORK/esp.img" "$WORK/BOOTAA64.EFI" ::/EFI/BOOT/BOOTAA64.EFI
mcopy -i "$WORK/esp.img" "$FILES/provision.toml.example" ::/appliance/provision.toml.example
mke2fs -q -t ext4 -L lfr-root -U "$ROOT_UUID" -E root_owner=0:0 -d "$R" "$WORK/root.img" "${ROOT_MIB}M"

total_mib=$((1 + ESP_MIB + ROOT_MIB + 1))
rm -f "$OUT" && truncate -s "${total_mib}M" "$OUT"
sfdisk --quiet "$OUT" <<PARTS
label: gpt
start=1MiB, size=${ESP_MIB}MiB, type=U, name="LFR-BOOT"
start=$((1 + ESP_MIB))MiB, size=${ROOT_MIB}MiB, type=L, name="lfr-root"
PARTS
dd if="$WORK/esp.img" of="$OUT" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$WORK/root.img" of="$OUT" bs=1M seek=$((1 + ESP_MIB)) conv=notrunc,sparse status=none
say "image $OUT: ${total_mib} MiB (boot ${ESP_MIB} MiB, root ${ROOT_MIB} MiB, root UUID $ROOT_UUID) in $((SECONDS - t0)) s"
