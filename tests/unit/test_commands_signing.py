"""Signed commands: only the pinned key, this device, inside the validity window; every refusal has a reason."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.commands.signing import CommandRefused, build_command, sign_command, verify_envelope
from appliance.watchlist.schemas import first_error

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
KEY = Ed25519PrivateKey.generate()
PUB = KEY.public_key()


def envelope(kind="revoke_watchlist", device="van-01", args=None, now=NOW, lifetime=600, key=KEY):
    return sign_command(key, build_command(kind, device, args, lifetime_s=lifetime, now=now))


def check(env, now=NOW, **kw):
    return verify_envelope(json.loads(json.dumps(env)), PUB, "van-01", now=now, **kw)


def test_valid_command():
    env = envelope(args={"reason": "list withdrawn by the authorising officer"})
    assert first_error("command", env) is None
    cmd = check(env)
    assert cmd.type == "revoke_watchlist" and cmd.args["reason"].startswith("list withdrawn")
    assert len(cmd.nonce) == 32


def refused(env, reason, **kw):
    with pytest.raises(CommandRefused) as e:
        check(env, **kw)
    assert e.value.reason == reason, e.value
    return e.value


def test_unsigned():
    env = envelope()
    env["sig"] = ""
    refused(env, "unsigned")
    del env["sig"]
    refused(env, "unsigned")


def test_wrong_key_and_forged_signature():
    refused(envelope(key=Ed25519PrivateKey.generate()), "unknown_key")
    env = envelope()
    env["command"]["args"] = {"reason": "changed after signing"}
    refused(env, "bad_signature")
    # A rogue key that claims the pinned key's id still fails on the signature.
    rogue = envelope(key=Ed25519PrivateKey.generate())
    rogue["key_id"] = env["key_id"]
    refused(rogue, "bad_signature")


def test_other_device():
    refused(envelope(device="van-02"), "wrong_device")


def test_time_window():
    refused(envelope(now=NOW - timedelta(hours=1)), "expired")
    refused(envelope(now=NOW + timedelta(hours=1)), "not_yet_valid")
    refused(envelope(lifetime=7200), "lifetime_too_long", max_lifetime_s=3600)
    check(envelope(now=NOW - timedelta(minutes=12)), clock_skew_s=300)  # expired 2 min ago, within the skew


@pytest.mark.parametrize("mutate", [
    lambda e: e["command"].update(type="format_disk"),
    lambda e: e["command"].pop("nonce"),
    lambda e: e.update(extra=1),
    lambda e: e["command"].update(args={"authorised_by": "x"}),  # revoke takes no such argument
])
def test_malformed(mutate):
    env = envelope()
    mutate(env)
    refused(env, "malformed")


def test_start_deployment_args_are_checked():
    args = {"authorised_by": "Supt A. Smith", "purpose": "p", "location": {"text": "High St"}, "dpia_ref": "D-1",
            "planned_end": "2026-11-26T13:00:00Z"}
    assert check(envelope("start_deployment", args=args)).args == args
    refused(envelope("start_deployment", args={k: v for k, v in args.items() if k != "dpia_ref"}), "malformed")
