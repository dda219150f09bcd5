"""The transparency report as a page a non-engineer can read (HTML, self-contained) or as Markdown.

Plain words first, numbers next to what they mean, and the two rates side by side with what each one is
and is not. Everything shown comes from build_report(): counts only.
"""

from __future__ import annotations

import html

from appliance.reports.build import Report
from appliance.timeutil import parse_time

END_REASONS = {"planned_end": "at its planned end", "officer": "ended by an officer",
               "command": "ended by the control room", "revoked": "ended because the watchlist was withdrawn",
               "superseded": "replaced by a new deployment", None: "still running when this report was made"}
SOURCES = {"console": "the in-van console", "command": "a signed instruction from the control room",
           "cli": "the device's command line"}


def _when(value: str | None) -> str:
    if not value:
        return "—"
    dt = parse_time(value)
    return dt.strftime("%-d %B %Y, %H:%M UTC")


def _duration(a: str | None, b: str | None) -> str:
    if not a or not b:
        return "—"
    secs = (parse_time(b) - parse_time(a))
    mins = int(secs.total_seconds() // 60)
    return f"{mins // 60} h {mins % 60:02d} min" if mins >= 60 else f"{mins} min"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%" if x >= 0.001 else f"{x * 100:.3f}%"


def _one_in(rate: float | None) -> str:
    if not rate:
        return "not known"
    n = 1 / rate
    return f"about 1 in {n:,.0f}" if n >= 10 else f"{rate * 100:.1f}%"


def _expected(x: float) -> str:
    if x < 0.05:
        return "well under one false alert"
    return f"about {x:.2g} false alert{'' if round(x, 1) == 1 else 's'}"


def _n(x) -> str:
    return f"{x:,}" if isinstance(x, int) else ("—" if x is None else str(x))


def sections(r: Report) -> dict:
    """The report's content as plain strings and rows (shared by the HTML and Markdown renderings)."""
    d = r.deployment
    loc = d["location"] or {}
    coords = f"{loc['lat']:.5f}, {loc['lon']:.5f}" if loc.get("lat") is not None else "not recorded"
    decided = r.confirmed + r.rejected + r.unsure
    summary = (
        f"From {_when(d['starts_at'])} to {_when(d['ended_at']) if d['ended_at'] else 'the time of this report'}, "
        f"device {r.device_id or 'this van'} ran live facial recognition at {loc.get('text', '—')}, for this "
        f"purpose: {d['purpose']}. It was authorised by {d['authorised_by']}. "
        f"The camera saw {_n(r.faces_seen)} faces. The system raised {_n(r.alerts)} alert"
        f"{'s' if r.alerts != 1 else ''}, each shown to an officer to decide: {_n(r.confirmed)} confirmed, "
        f"{_n(r.rejected)} rejected as wrong, {_n(r.unsure)} where the officer could not tell"
        + (f", and {_n(r.pending)} not yet decided." if r.pending else ".")
    )
    authorised = [
        ("Deployment", d["id"]),
        ("Authorised by", d["authorised_by"]),
        ("Started from", SOURCES.get(d.get("source"), d.get("source") or "—")),
        ("Purpose", d["purpose"]),
        ("Location", loc.get("text", "—")),
        ("Coordinates", coords),
        ("Data protection impact assessment", d["dpia_ref"]),
        ("Started", _when(d["starts_at"])),
        ("Planned end", _when(d["planned_end"])),
        ("Ended", f"{_when(d['ended_at'])} ({END_REASONS.get(d.get('end_reason'), d.get('end_reason'))})"
         if d["ended_at"] else END_REASONS[None]),
        ("Length", _duration(d["starts_at"], d["ended_at"] or d["planned_end"])),
    ]
    seen = [
        ("Faces seen by the camera", _n(r.faces_seen),
         "Each person is counted once while they stay in view."),
        ("Not checked: picture not good enough", _n(r.faces_skipped_quality),
         "Too small, blurred or turned away. These faces were not compared with the watchlist."),
        ("Not checked: left view too soon", _n(r.faces_not_checked), "Passed the quality check but were gone before "
         "being compared."),
        ("Comparisons with the watchlist", _n(r.looks_checked),
         "A face is compared at its best few looks, so this can be larger than the faces checked."),
    ]
    decisions = [
        ("Alerts raised", _n(r.alerts), "A possible match shown to an officer. Nothing happens without the officer."),
        ("Confirmed by an officer", _n(r.confirmed), "The officer judged the person to be the one on the watchlist."),
        ("Rejected by an officer", _n(r.rejected), "The officer judged the alert wrong: a false alert."),
        ("Officer could not tell", _n(r.unsure), ""),
        ("Awaiting a decision", _n(r.pending), ""),
    ]
    wl = d.get("watchlist") or {}
    model = d.get("model") or {}
    expected = {
        "headline": _one_in(r.expected_false_alert_rate),
        "text": ("of the faces of people who are not on the watchlist would be expected to raise a false alert, "
                 f"for a watchlist of {_n(wl.get('subjects'))} people at this threshold. This comes from testing "
                 "the model on a public set of face photos before use."
                 if r.expected_false_alert_rate is not None else
                 "The threshold used is not the one the model was tested at, so no tested rate applies."),
        "extra": (f"For the {_n(r.faces_seen)} faces seen, that is {_expected(r.expected_false_alerts)} expected."
                  if r.expected_false_alerts is not None else ""),
    }
    measured = {
        "headline": _pct(r.rejected_share) if r.rejected_share is not None else "no decisions yet",
        "text": (f"of the alerts officers decided on ({decided}) were rejected as wrong." if decided else
                 "Officers have not decided on any alert of this deployment yet."),
        "extra": "",
    }
    why = ("These two numbers answer different questions. The first is a share of all faces seen, most of whom "
           "are not on any list, so it is very small. The second is a share of alerts only. When almost everyone "
           "who walks past is not on the list, even a very small first number can make the second one large. "
           "Both are shown so that neither is mistaken for the other.")
    settings = [
        ("Match threshold", f"{d['threshold']:.4f}" if d.get("threshold") is not None else "—",
         "How similar a face must be to a watchlist photo before an officer is alerted (higher is stricter)."),
        ("Watchlist", f"{wl.get('id', '—')}, version {wl.get('version', '—')}", ""),
        ("People on the watchlist", _n(wl.get("subjects")), ""),
        ("Watchlist fingerprint (SHA-256)", (wl.get("sha256") or "—")[:16] + "…",
         "Identifies exactly which approved list was used."),
        ("Face recognition model", model.get("id", "—"), ""),
        ("Model fingerprint (SHA-256)", (model.get("sha256") or "—")[:16] + "…", ""),
    ]
    a = r.audit
    if a.get("checked"):
        audit = ("The device's tamper-evident log was checked when this report was made and is intact "
                 f"({_n(a['entries'])} entries)." if a.get("ok") else
                 f"WARNING: the device's tamper-evident log is damaged at entry {a.get('first_bad')}: "
                 f"{a.get('reason')}.")
    else:
        audit = "The device's tamper-evident log was not checked for this report."
    audit += (f" {_n(a.get('entries_for_deployment', 0))} of its entries were written during this deployment "
              "(its start and end, every alert and every officer's decision, logins, settings changes).")
    return {"title": f"Live facial recognition: deployment report {d['id']}", "summary": summary,
            "authorised": authorised, "seen": seen, "decisions": decisions, "expected": expected,
            "measured": measured, "why": why, "settings": settings, "audit": audit,
            "audit_ok": bool(a.get("ok")) or not a.get("checked"),
            "privacy": "This report holds no images, no biometric data and no names: only counts.",
            "footer": f"Made {_when(r.generated_at)} on device {r.device_id or '—'}."}


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1b1f24;max-width:52rem;
margin:2rem auto;padding:0 1.25rem;line-height:1.5;background:#fff}
h1{font-size:1.6rem;margin:0 0 .25rem}h2{font-size:1.2rem;margin:2rem 0 .6rem;border-bottom:2px solid #e3e6ea;
padding-bottom:.25rem}.lead{font-size:1.08rem;background:#f4f6f8;border-left:4px solid #2c5d8f;padding:.9rem 1rem}
table{border-collapse:collapse;width:100%}td,th{text-align:left;vertical-align:top;padding:.45rem .6rem;
border-bottom:1px solid #e3e6ea}th{width:34%;font-weight:600;color:#38414a}td.num{font-size:1.15rem;
font-weight:700;white-space:nowrap;width:7rem}td.note{color:#5a6470;font-size:.93rem}
.rates{display:flex;gap:1rem;flex-wrap:wrap}.rate{flex:1 1 18rem;border:1px solid #d5dae0;border-radius:8px;
padding:1rem}.rate h3{margin:0 0 .4rem;font-size:1rem;color:#38414a}.big{font-size:1.9rem;font-weight:700;
color:#2c5d8f;margin:.2rem 0}.why{color:#38414a;font-size:.97rem}.ok{color:#1d6b35}.bad{color:#a11;
font-weight:700}.muted{color:#5a6470;font-size:.9rem}footer{margin-top:2.5rem;color:#5a6470;font-size:.85rem}
@media print{body{margin:0}.rate{break-inside:avoid}}
"""


def render_html(r: Report) -> str:
    s = sections(r)
    e = html.escape

    def kv(rows):
        return "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows)

    def counts(rows):
        return "".join(f"<tr><th>{e(k)}</th><td class='num'>{e(v)}</td><td class='note'>{e(n)}</td></tr>"
                       for k, v, n in rows)

    def rate(title, x):
        extra = f"<p class='muted'>{e(x['extra'])}</p>" if x["extra"] else ""
        return (f"<div class='rate'><h3>{e(title)}</h3><div class='big'>{e(x['headline'])}</div>"
                f"<p>{e(x['text'])}</p>{extra}</div>")

    audit_cls = "ok" if s["audit_ok"] else "bad"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{e(s['title'])}</title><style>{_CSS}</style></head>
<body><main>
<h1>{e(s['title'])}</h1>
<p class="muted">{e(s['privacy'])}</p>
<p class="lead">{e(s['summary'])}</p>
<h2>What was authorised</h2><table>{kv(s['authorised'])}</table>
<h2>What the camera saw</h2><table>{counts(s['seen'])}</table>
<h2>Alerts and what officers decided</h2><table>{counts(s['decisions'])}</table>
<h2>Two different rates</h2>
<div class="rates">{rate('Expected false alerts, per face seen', s['expected'])}
{rate('Alerts officers rejected, per alert decided', s['measured'])}</div>
<p class="why">{e(s['why'])}</p>
<h2>Settings used</h2><table>{counts(s['settings'])}</table>
<h2>Record keeping</h2><p class="{audit_cls}">{e(s['audit'])}</p>
<footer>{e(s['footer'])}</footer>
</main></body></html>
"""


def render_markdown(r: Report) -> str:
    s = sections(r)

    def cell(v) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    def kv(rows):
        return "| | |\n|---|---|\n" + "".join(f"| **{cell(k)}** | {cell(v)} |\n" for k, v in rows)

    def counts(rows):
        return "| | | |\n|---|--:|---|\n" + "".join(f"| **{cell(k)}** | {cell(v)} | {cell(n)} |\n" for k, v, n in rows)

    ex, me = s["expected"], s["measured"]
    return (
        f"# {s['title']}\n\n_{s['privacy']}_\n\n> {s['summary']}\n\n"
        f"## What was authorised\n\n{kv(s['authorised'])}\n"
        f"## What the camera saw\n\n{counts(s['seen'])}\n"
        f"## Alerts and what officers decided\n\n{counts(s['decisions'])}\n"
        f"## Two different rates\n\n"
        f"- **Expected false alerts, per face seen: {ex['headline']}** {ex['text']} {ex['extra']}\n"
        f"- **Alerts officers rejected, per alert decided: {me['headline']}** {me['text']}\n\n{s['why']}\n\n"
        f"## Settings used\n\n{counts(s['settings'])}\n"
        f"## Record keeping\n\n{s['audit']}\n\n---\n{s['footer']}\n"
    )
