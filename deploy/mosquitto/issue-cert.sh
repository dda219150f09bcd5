#!/usr/bin/env bash
# Issue the broker's PKI with openssl: a CA, the broker's server certificate, and client certificates
# whose CN is the MQTT username (a device id, or "control-room").
#
#   issue-cert.sh ca      DIR                      -> DIR/ca.crt, DIR/ca.key (keep ca.key offline)
#   issue-cert.sh server  DIR HOSTNAME [IP...]     -> DIR/server.crt, DIR/server.key
#   issue-cert.sh device  DIR DEVICE_ID            -> DIR/DEVICE_ID.crt, DIR/DEVICE_ID.key
#   issue-cert.sh client  DIR NAME                 -> same as device (e.g. NAME = control-room)
#
# Keys are EC P-256; private keys are written with mode 0600. Validity: CA 10 years, others DAYS (825).
set -euo pipefail
umask 077
DAYS="${DAYS:-825}"

usage() { sed -n '2,12p' "$0" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
cmd="$1"; dir="$2"; shift 2
mkdir -p "$dir"

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; chmod 600 "$1"; }

sign() {  # sign NAME SUBJECT EXTFILE
    local name="$1" subj="$2" ext="$3"
    [[ -f "$dir/ca.crt" && -f "$dir/ca.key" ]] || { echo "issue-cert.sh: no CA in $dir (run: $0 ca $dir)" >&2; exit 2; }
    [[ ! -e "$dir/$name.crt" ]] || { echo "issue-cert.sh: $dir/$name.crt already exists" >&2; exit 2; }
    newkey "$dir/$name.key"
    openssl req -new -key "$dir/$name.key" -subj "$subj" -out "$dir/$name.csr" 2>/dev/null
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
        -days "$DAYS" -sha256 -extfile "$ext" -out "$dir/$name.crt" 2>/dev/null
    rm -f "$dir/$name.csr" "$ext"
    chmod 644 "$dir/$name.crt"
    echo "$dir/$name.crt"
}

case "$cmd" in
  ca)
    [[ ! -e "$dir/ca.key" ]] || { echo "issue-cert.sh: $dir/ca.key already exists" >&2; exit 2; }
    newkey "$dir/ca.key"
    openssl req -new -x509 -key "$dir/ca.key" -subj "/CN=LFR appliance CA" -days 3650 -sha256 \
        -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$dir/ca.crt" 2>/dev/null
    chmod 644 "$dir/ca.crt"
    echo "$dir/ca.crt"
    ;;
  server)
    [[ $# -ge 1 ]] || usage
    host="$1"; shift
    san="DNS:$host"
    for ip in "$@"; do san="$san,IP:$ip"; done
    ext="$(mktemp)"
    printf 'basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$san" > "$ext"
    sign server "/CN=$host" "$ext"
    ;;
  device|client)
    [[ $# -eq 1 ]] || usage
    id="$1"
    # The CN becomes the MQTT username and is substituted into ACL patterns: keep it to safe characters.
    [[ "$id" =~ ^[A-Za-z0-9_.-]{1,64}$ ]] || { echo "issue-cert.sh: bad id '$id' (letters, digits, _ . -)" >&2; exit 2; }
    ext="$(mktemp)"
    printf 'basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' > "$ext"
    sign "$id" "/CN=$id" "$ext"
    ;;
  *) usage ;;
esac
