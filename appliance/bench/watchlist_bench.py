"""The 10,000-subject watchlist bundle, end to end: build, sign and encrypt, publish over MQTT v5/TLS to a
local Mosquitto (the deployed config and ACL), receive, verify, apply, swap the gallery, ack.

    from appliance.bench import watchlist_bench
    result = watchlist_bench.run(out_dir, quick=False)   # quick: 1,000 subjects

A few real LFW faces are enrolled with the van's pipeline, then replicated with small perturbations (of the
template, and of the photo before JPEG encoding) so every entry has its own template and reference JPEG.
The device runs in its own process, so its peak memory (VmHWM) is the device's alone.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np

BASE_FACES = 40
SUBJECTS = 10_000
QUICK_SUBJECTS = 1_000
DEVICE = "bench-van"
CHUNK_BYTES = 256 * 1024


def _base_faces(log) -> tuple[list[np.ndarray], list[np.ndarray], str, str, float]:
    """(templates, photos, source, model id, seconds to enrol) from LFW, or synthetic when LFW is absent."""
    from appliance.config import load_config
    from appliance.paths import shared_data_dir
    from appliance.vision.pipeline import FacePipeline

    pipe = FacePipeline.from_config(load_config())
    lfw = shared_data_dir() / "lfw"
    templates, photos = [], []
    t0 = time.perf_counter()
    if lfw.is_dir():
        for folder in sorted(p for p in lfw.iterdir() if p.is_dir()):
            img = cv2.imread(str(sorted(folder.glob("*.jpg"))[0]))
            r = pipe.enrol(img)
            if r.ok:
                templates.append(r.embedding.astype(np.float32))
                photos.append(img)
            if len(templates) == BASE_FACES:
                break
        source = "lfw"
    if not templates:
        log("watchlist bench: LFW not found, using synthetic faces")
        rng = np.random.default_rng(0)
        for _ in range(BASE_FACES):
            v = rng.standard_normal(128).astype(np.float32)
            templates.append(v / np.linalg.norm(v))
            photos.append(cv2.GaussianBlur(rng.integers(0, 255, (150, 150, 3), dtype=np.uint8), (0, 0), 3))
        source = "synthetic"
    return templates, photos, source, pipe.model_id, time.perf_counter() - t0


def _entries(n: int, templates, photos):
    from appliance.watchlist.enrol import reference_jpeg
    from appliance.watchlist.records import Entry
    from appliance.watchlist.timeutil import iso, utcnow

    rng = np.random.default_rng(1)
    expires = iso(utcnow() + timedelta(days=60))
    out = []
    for i in range(n):
        k = i % len(templates)
        t = templates[k] + rng.normal(0, 0.03, 128).astype(np.float32)
        photo = cv2.convertScaleAbs(photos[k], alpha=1.0, beta=float(i % 23) - 11.0)
        photo[i % photo.shape[0], : 1 + i % 17] = (i * 37) % 256  # a few pixels differ: every JPEG is distinct
        meta = {"id": f"B-{i:05d}", "display_name": f"Bench subject {i}", "category": "wanted",
                "legal_basis": "benchmark (synthetic replicas of LFW faces)", "image_source": "LFW replica",
                "expires_at": expires, "added_by": "make bench"}
        out.append(Entry(meta, (t / np.linalg.norm(t))[None, :].astype(np.float32), reference_jpeg(photo)))
    return out


def _vm_kb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _device_main(config_path: str, threshold: float, q) -> None:
    """The van: its own process, so that its peak memory is measured alone."""
    from appliance.config import load_config
    from appliance.daemon.assembly import gallery_swapper, make_receiver, make_sync_service, open_store
    from appliance.matching import MatchService

    rss_start = _vm_kb("VmRSS")
    config = load_config(Path(config_path))
    matcher = MatchService(threshold)
    store = open_store(config)
    applied_at: list[float] = []
    swap = gallery_swapper(matcher)

    def on_applied(s):
        swap(s)
        applied_at.append(time.time())

    receiver = make_receiver(config, store, on_applied=on_applied)
    service = make_sync_service(config, receiver).start()
    q.put({"ready": True})
    ok = service.wait_processed(1, 1800)
    service.stop()
    q.put({"ok": ok, "timings": receiver.timings, "applied_at": applied_at[0] if applied_at else None,
           "gallery_subjects": matcher.gallery.n_subjects, "rss_start_mb": rss_start,
           "peak_rss_mb": _vm_kb("VmHWM"), "ack": service.last_ack})
    store.close()


def run(out_dir: Path, quick: bool = False, log=print, subjects: int | None = None) -> dict[str, Any]:
    """Build, send, apply and ack a bundle of 10,000 subjects (1,000 when quick); returns the figures.

    Also writes them to out_dir/watchlist.json.
    """
    from appliance.keys.keypairs import generate_control_room, generate_device, load_device_public, load_signing_key
    from appliance.matching import resolve_threshold
    from appliance.runtime.manifest import load_manifest
    from appliance.sync.local_broker import TlsBroker, missing_tools
    from appliance.sync.watchlist_sync import publish_bundle
    from appliance.watchlist.builder import build_bundle

    n = subjects or (QUICK_SUBJECTS if quick else SUBJECTS)
    missing = missing_tools()
    if missing:
        return {"skipped": f"{', '.join(missing)} not installed"}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="watchlist-bench-", dir=out_dir))
    broker = None
    proc = None
    try:
        keys = work / "keys"
        generate_control_room(keys)
        generate_device(keys, DEVICE)
        templates, photos, source, model_id, enrol_s = _base_faces(log)
        t0 = time.perf_counter()
        entries = _entries(n, templates, photos)
        synth_s = time.perf_counter() - t0
        log(f"watchlist bench: {n} entries from {len(templates)} {source} faces in {synth_s:.1f} s")

        t0 = time.perf_counter()
        built = build_bundle(entries, work / "bench.lfrwl", watchlist_id="bench", model_id=model_id,
                             signing_key=load_signing_key(keys / "control-room.ed25519.key"),
                             recipients=[(DEVICE, load_device_public(keys / f"{DEVICE}.x25519.pub"))], version=1)
        build_s = time.perf_counter() - t0
        del entries
        size = built.path.stat().st_size
        log(f"watchlist bench: bundle {size / 1e6:.1f} MB built, signed and encrypted in {build_s:.1f} s")

        broker = TlsBroker(work / "broker")
        broker.start()
        data = work / "device"
        mq = broker.mqtt_config(DEVICE)
        cfg = work / "device.toml"
        cfg.write_text(
            f'[device]\nid = "{DEVICE}"\ndata_dir = "{data}"\n[models]\nembedder = "{model_id}"\n'
            f'[watchlist]\ncontrol_room_key = "{keys / "control-room.ed25519.pub"}"\n'
            f'device_key = "{keys / f"{DEVICE}.x25519.key"}"\n'
            "[mqtt]\n" + "".join(f'{k} = "{v}"\n' for k, v in mq.items())
        )
        from appliance.config import load_config

        spec = load_manifest().get(model_id, "embedder")
        threshold = resolve_threshold(load_config().matcher, spec)
        ctx = multiprocessing.get_context("spawn")
        q = ctx.Queue()
        proc = ctx.Process(target=_device_main, args=(str(cfg), threshold, q), daemon=True)
        proc.start()
        if not q.get(timeout=120).get("ready"):
            raise RuntimeError("the device process did not start")
        time.sleep(0.5)  # let its subscription settle
        t_pub = time.time()
        res = publish_bundle(broker.settings("control-room", "bench-publisher"), built.path, [DEVICE],
                             chunk_bytes=CHUNK_BYTES, wait_ack_s=1800)
        dev = q.get(timeout=120)
        proc.join(timeout=60)
        ack = res.acks.get(DEVICE) or {}
        t = dev["timings"]
        ack_at = res.ack_received_at.get(DEVICE)
        result = {
            "subjects": n,
            "base_faces": len(templates),
            "face_source": source,
            "model_id": model_id,
            "bundle_bytes": size,
            "bundle_mb": round(size / 1e6, 1),
            "bytes_per_subject": round(size / n),
            "chunks": res.chunks,
            "chunk_bytes": CHUNK_BYTES,
            "ack_status": ack.get("status"),
            "ack_reason": ack.get("reason"),
            "gallery_subjects": dev["gallery_subjects"],
            "seconds": {
                "enrol_base_faces": round(enrol_s, 2),
                "replicate_entries": round(synth_s, 2),
                "build_sign_encrypt": round(build_s, 2),
                "publish_chunks": round(res.seconds_send, 2),
                "verify": round(t.get("verify_s", float("nan")), 2),
                "apply": round(t.get("apply_s", float("nan")), 2),
                "swap_gallery": round(t.get("swap_s", float("nan")), 3),
                "ack": round(ack_at - dev["applied_at"], 3) if ack_at and dev["applied_at"] else None,
                "publish_to_ack": round(ack_at - t_pub, 2) if ack_at else None,
            },
            "device_memory_mb": {"rss_at_start": round(dev["rss_start_mb"] or 0, 1),
                                 "peak": round(dev["peak_rss_mb"] or 0, 1)},
        }
        (out_dir / "watchlist.json").write_text(json.dumps(result, indent=2) + "\n")
        log(f"watchlist bench: {json.dumps(result)}")
        return result
    finally:
        if proc is not None and proc.is_alive():
            proc.kill()
            proc.join()
        if broker is not None:
            broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":  # python -m appliance.bench.watchlist_bench [OUT] [--quick]
    import sys

    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    run(Path(args[0] if args else "bench/results"), quick="--quick" in sys.argv)
