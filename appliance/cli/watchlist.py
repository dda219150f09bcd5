"""`appliance watchlist build|publish|receive|status|erase`: the control room's and the van's watchlist tools."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from datetime import timedelta
from pathlib import Path

from appliance.config import load_config
from appliance.errors import WatchlistError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("watchlist", help="build, publish, receive, inspect or erase the watchlist")
    a = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    b = a.add_parser("build", help="enrol photos and write a signed bundle encrypted to devices (control room)")
    b.add_argument("--subjects", type=Path, required=True, help="subjects CSV or JSON (docs/watchlist.md)")
    b.add_argument("--photos", type=Path, required=True, help="folder of enrolment photos")
    b.add_argument("--out", type=Path, required=True, help="bundle file to write (<out>.state.json beside it)")
    b.add_argument("--watchlist-id", required=True, help="the watchlist's name (a van keeps one at a time)")
    b.add_argument("--version", type=int, help="bundle version (monotonic); default: base version + 1")
    b.add_argument("--base", type=Path, help="state file of the previous bundle: build a delta against it")
    b.add_argument("--signing-key", type=Path, required=True, help="control room Ed25519 private key")
    b.add_argument("--recipient", action="append", required=True, metavar="DEVICE=PUBKEY",
                   help="device id and its X25519 public key file (repeat for several devices)")
    b.add_argument("--expires-at", help="bundle expiry (ISO 8601 or date); default: --valid-days from now")
    b.add_argument("--valid-days", type=float, default=7.0,
                   help="days until the watchlist expires and vans stop matching against it (default 7)")
    b.add_argument("--allow-refusals", action="store_true", help="write the bundle without refused subjects")
    b.add_argument("--config", type=Path, help="appliance config (which models to enrol with)")
    b.add_argument("--json", action="store_true", help="print a JSON report")
    b.set_defaults(func=run_build)

    u = a.add_parser("publish", help="send a bundle to devices over MQTT v5/TLS and wait for their acks")
    u.add_argument("bundle", type=Path, help="the .lfrwl file `watchlist build` wrote")
    u.add_argument("--broker", required=True, help="mqtts://host:port")
    u.add_argument("--device", action="append", required=True, help="device id (repeat for several)")
    u.add_argument("--ca", type=Path, required=True, help="CA certificate of the broker")
    u.add_argument("--cert", type=Path, required=True, help="control room client certificate")
    u.add_argument("--key", type=Path, required=True, help="control room client key (0600)")
    u.add_argument("--client-id", default="control-room-publisher", help="MQTT client id of this publisher")
    u.add_argument("--chunk-bytes", type=int, default=256 * 1024, help="bytes per MQTT chunk (default 256 KiB)")
    u.add_argument("--wait-ack", type=float, default=120.0, help="seconds to wait for acks (0: do not wait)")
    u.add_argument("--transfer-id", help="resume a cut transfer by re-sending with its id (32 hex digits)")
    u.add_argument("--json", action="store_true", help="print the result (acks) as JSON")
    u.set_defaults(func=run_publish)

    i = a.add_parser("inspect", help="print a bundle's header; with --verify-key, check its signature too")
    i.add_argument("bundle", type=Path, help="a .lfrwl file: its header, without decrypting anything")
    i.add_argument("--verify-key", type=Path, help="control room Ed25519 public key to verify against")
    i.set_defaults(func=run_inspect)

    r = a.add_parser("receive", help="device: receive bundles over MQTT (or apply --file), verify, apply, ack")
    r.add_argument("--config", type=Path, help="the van's config file (default /etc/appliance/appliance.toml)")
    r.add_argument("--file", type=Path, help="apply this bundle file instead of listening on MQTT")
    r.add_argument("--once", action="store_true", help="exit after the first bundle is processed")
    r.add_argument("--timeout", type=float, help="give up after this many seconds")
    r.set_defaults(func=run_receive)

    s = a.add_parser("status", help="device: the active watchlist, its expiry, last sync and last refusal")
    s.add_argument("--config", type=Path, help="the van's config file (default /etc/appliance/appliance.toml)")
    s.add_argument("--json", action="store_true", help="one JSON document instead of text")
    s.set_defaults(func=run_status)

    e = a.add_parser("erase", help="device: crypto-erase the watchlist (destroy its key, delete its files)")
    e.add_argument("--config", type=Path, help="the van's config file (default /etc/appliance/appliance.toml)")
    e.add_argument("--yes", action="store_true", help="do it (without --yes nothing is erased)")
    e.set_defaults(func=run_erase)


def run_build(args: argparse.Namespace) -> int:
    from appliance.keys.keypairs import load_device_public, load_signing_key
    from appliance.vision.pipeline import FacePipeline
    from appliance.watchlist.builder import build_bundle, load_state
    from appliance.watchlist.enrol import enrol_subjects
    from appliance.watchlist.subjects import read_subjects
    from appliance.watchlist.timeutil import parse_time, utcnow

    signing_key = load_signing_key(args.signing_key)
    recipients = []
    for spec in args.recipient:
        dev, sep, pub = spec.partition("=")
        if not sep or not dev or not pub:
            raise WatchlistError(f"--recipient {spec!r} must be DEVICE=PUBKEY_FILE")
        recipients.append((dev, load_device_public(Path(pub))))
    base = load_state(args.base) if args.base else None
    subjects = read_subjects(args.subjects)
    now = utcnow()
    expires = parse_time(args.expires_at, end_of_day=True) if args.expires_at else now + timedelta(days=args.valid_days)
    pipe = FacePipeline.from_config(load_config(args.config))
    entries, refusals = enrol_subjects(subjects, args.photos, pipe, now=now)
    for r in refusals:
        print(f"refused: {r}", file=sys.stderr)
    if refusals and not args.allow_refusals:
        raise WatchlistError(f"{len(refusals)} subject(s) or photo(s) refused (listed above); fix them or pass "
                             "--allow-refusals to build without them")
    if not entries and base is None:
        raise WatchlistError("no subject could be enrolled")
    built = build_bundle(entries, args.out, watchlist_id=args.watchlist_id, model_id=pipe.model_id,
                         signing_key=signing_key, recipients=recipients, version=args.version, base_state=base,
                         expires_at=expires, issued_at=now)
    h = built.header
    report = {"bundle": str(built.path), "state": str(built.state_path), "bytes": built.path.stat().st_size,
              "watchlist_id": h["watchlist_id"], "version": h["version"], "kind": h["kind"],
              "base_version": h["base_version"], "model_id": h["model_id"], "expires_at": h["expires_at"],
              "subjects": len(entries), "added": len(built.added), "removed": len(built.removed),
              "watchlist_sha256": h["watchlist_sha256"], "recipients": [r["device"] for r in h["recipients"]],
              "refused": [{"subject": r.subject_id, "photo": r.photo, "reason": r.reason, "detail": r.detail}
                          for r in refusals]}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"{h['kind']} bundle {built.path} ({report['bytes']} bytes): {h['watchlist_id']} v{h['version']}, "
              f"{len(entries)} subjects (+{len(built.added)} -{len(built.removed)}), model {h['model_id']}, "
              f"expires {h['expires_at']}, hash {h['watchlist_sha256'][:16]}, for {', '.join(report['recipients'])}")
    return 0


def run_publish(args: argparse.Namespace) -> int:
    from appliance.sync.mqtt import MqttSettings
    from appliance.sync.watchlist_sync import publish_bundle

    if not args.bundle.exists():
        raise WatchlistError(f"bundle {args.bundle} not found")
    settings = MqttSettings.from_url(args.broker, args.client_id, ca_file=args.ca, cert_file=args.cert,
                                     key_file=args.key, session_expiry_s=3600)
    res = publish_bundle(settings, args.bundle, args.device, chunk_bytes=args.chunk_bytes,
                         transfer_id=args.transfer_id, wait_ack_s=args.wait_ack)
    if args.json:
        print(json.dumps({"transfer_id": res.transfer_id, "chunks": res.chunks, "bytes": res.bytes,
                          "send_s": round(res.seconds_send, 3), "acks": res.acks}, indent=1))
    else:
        print(f"sent {args.bundle} ({res.bytes} bytes, {res.chunks} chunks) as transfer {res.transfer_id} "
              f"to {len(args.device)} device(s) in {res.seconds_send:.1f} s")
        for d in args.device:
            ack = res.acks.get(d)
            if ack is None:
                print(f"{d}: no ack" + (f" within {args.wait_ack:.0f} s (resume with --transfer-id "
                                        f"{res.transfer_id})" if args.wait_ack > 0 else ""))
            elif ack["status"] == "applied":
                print(f"{d}: applied {ack['watchlist_id']} v{ack['version']} hash {ack['watchlist_sha256'][:16]}")
            else:
                print(f"{d}: refused ({ack['reason']}): {ack['detail']}")
    if args.wait_ack <= 0:
        return 0
    return 0 if all(res.acks.get(d, {}).get("status") == "applied" for d in args.device) else 1


def run_inspect(args: argparse.Namespace) -> int:
    from appliance.keys.keypairs import load_verify_key
    from appliance.watchlist.bundle import BundleRefused, read_header_unverified, verify_signature

    if not args.bundle.exists():
        raise WatchlistError(f"bundle {args.bundle} not found")
    if args.verify_key:
        try:
            header = verify_signature(args.bundle, load_verify_key(args.verify_key))
        except BundleRefused as e:
            raise WatchlistError(f"{args.bundle}: {e.reason}: {e.detail}") from None
        verified = True
    else:
        header = read_header_unverified(args.bundle)
        if header is None:
            raise WatchlistError(f"{args.bundle} is not a watchlist bundle")
        verified = False
    summary = {k: header.get(k) for k in ("watchlist_id", "version", "kind", "base_version", "model_id",
                                          "issued_at", "expires_at", "entry_count", "remove_count",
                                          "watchlist_sha256", "signer")}
    summary["recipients"] = [r.get("device") for r in header.get("recipients", [])]
    summary["payload_bytes"] = (header.get("payload") or {}).get("size")
    summary["signature_verified"] = verified
    print(json.dumps(summary, indent=1))
    return 0


def run_receive(args: argparse.Namespace) -> int:
    from appliance.daemon.assembly import make_receiver, make_sync_service, open_store

    config = load_config(args.config)
    store = open_store(config)
    receiver = make_receiver(config, store)
    if args.file:
        ack = receiver.process(args.file)
        print(json.dumps(ack))
        return 0 if ack["status"] == "applied" else 1
    service = make_sync_service(config, receiver)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    service.start()
    try:
        if args.once:
            service.wait_processed(1, args.timeout if args.timeout else 10**9)
        else:
            stop.wait(args.timeout)
    finally:
        service.stop()
        store.close()
    if service.last_ack is not None:
        print(json.dumps(service.last_ack))
    return 0


def run_status(args: argparse.Namespace) -> int:
    from appliance.daemon.assembly import open_store

    config = load_config(args.config)
    store = open_store(config, create=False)
    try:
        st = store.status()
    finally:
        store.close()
    if args.json:
        print(json.dumps(st, indent=1))
        return 0
    if st["watchlist_id"] is None:
        print("no watchlist: the device does not match")
    else:
        state = "EXPIRED: not matching" if st["expired"] else "active"
        print(f"watchlist {st['watchlist_id']} v{st['version']} ({state})")
        print(f"  hash      {st['watchlist_sha256']}")
        print(f"  subjects  {st['subjects']} ({st['templates']} templates), model {st['model_id']}")
        print(f"  issued    {st['issued_at']}, expires {st['expires_at']}, signer {st['signer']}")
        print(f"  applied   {st['applied_at']}")
    for label, ev in (("last sync", st["last_sync"]), ("last refusal", st["last_refusal"])):
        if ev:
            why = f" ({ev['reason']}: {ev['detail']})" if ev["reason"] else ""
            print(f"{label}: {ev['time']} {ev['status']} {ev['watchlist_id'] or '?'} v{ev['version']}{why}")
    return 0


def run_erase(args: argparse.Namespace) -> int:
    from appliance.storage import key_provider_from_config
    from appliance.watchlist.store import erase

    config = load_config(args.config)
    if not args.yes:
        raise WatchlistError("this destroys the watchlist key and files for good; add --yes to do it")
    for line in erase(config.device.data_dir, key_provider_from_config(config)):
        print(line)
    return 0
