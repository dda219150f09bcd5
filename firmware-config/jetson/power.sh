#!/usr/bin/env bash
# Jetson Orin power mode and clocks for the appliance. Run once as root; it persists across reboots.
#
# WHAT: selects an nvpmodel power mode and pins the clocks at that mode's maximum with jetson_clocks, from a
#       small systemd unit so it is reapplied at every boot.
# WHY:  the default dynamic frequency scaling lowers the clocks between bursts, which makes per-frame latency
#       jumpy; the van runs on a fixed budget from the vehicle supply, so we pick the mode that fits the
#       power supply and then run at its top clocks for steady latency.
#       Modes differ per module; list them with:  nvpmodel -p --verbose   and read the current one with
#       nvpmodel -q. On an Orin Nano 8GB (JetPack 6): 0 = 15 W, 1 = 7 W; on Orin NX 16GB: 0 = MAXN, 1 = 10 W,
#       2 = 15 W, 3 = 25 W. Orin Nano/NX "Super" (JetPack 6.2) adds MAXN SUPER. Check before choosing:
#       a mode above what the supply delivers browns out the board under load.
# USAGE: sudo firmware-config/jetson/power.sh [MODE]     (default MODE=0)
#        sudo firmware-config/jetson/power.sh --show
set -euo pipefail
MODE="${1:-0}"
if [[ "$MODE" == "--show" ]]; then
    nvpmodel -q --verbose
    jetson_clocks --show
    exit 0
fi
[[ "$MODE" =~ ^[0-9]+$ ]] || { echo "usage: $0 [MODE|--show]" >&2; exit 2; }
command -v nvpmodel >/dev/null || { echo "nvpmodel not found: this is not a Jetson with JetPack" >&2; exit 1; }

# nvpmodel stores the mode in /var/lib/nvpmodel/status and reapplies it at boot by itself.
# Some mode changes need a reboot; nvpmodel asks interactively, so answer "no" and tell the technician.
echo no | nvpmodel -m "$MODE" || true
echo "power mode now: $(nvpmodel -q | head -n 2 | tr '\n' ' ')"

# jetson_clocks is not persistent: a oneshot unit reapplies it after nvpmodel at each boot.
cat > /etc/systemd/system/jetson-clocks.service <<'UNIT'
[Unit]
Description=Pin Jetson clocks at the power mode's maximum (steady latency for the LFR appliance)
After=nvpmodel.service
Before=appliance.service

[Service]
Type=oneshot
ExecStart=/usr/bin/jetson_clocks
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now jetson-clocks.service
jetson_clocks --show | head -n 20
