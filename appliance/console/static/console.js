// In-van console page. Vanilla JS, no framework, nothing fetched from outside this device.
// Alerts, decisions and the status strip are pushed by the server over server-sent events (/api/stream);
// the page only asks for data when it loads, when the officer selects an alert or asks for older alerts.
"use strict";
(function () {
  const CSRF = document.querySelector('meta[name="csrf-token"]').content;
  const ME = document.querySelector('meta[name="officer-id"]').content;
  const TWO_OFFICER = document.querySelector('meta[name="two-officer"]').content === "on";
  const DEPLOYMENTS = document.querySelector('meta[name="deployments"]').content === "on";
  let lastStatus = {};  // the latest status snapshot's "status" (threshold floor, deployment)
  const $ = (id) => document.getElementById(id);
  const alerts = new Map();  // event_id -> alert view (see appliance/console/views.py)
  const PAGE = 50;           // alerts per page ("Show older")
  const SWEEP_PAGE = 200;    // larger pages while fetching undecided alerts that are older than the loaded ones
  // Paging is keyset: `oldest` is the event_id of the oldest alert of the newest-first run loaded so far, and
  // the next page is asked for with before=oldest. Pages are only ever added: nothing loaded is dropped.
  let oldest = null;
  let moreOlder = false;
  let paging = null;         // the page request in flight (one at a time)
  let lastCounters = {};
  let shortfallSeen = false; // the previous status snapshot already said undecided alerts are not loaded
  let outbox = { seq: 0, backlog: null };  // the newest numbered backlog reading (see app.py outbox_reading)
  let sending = null;        // the officer's last decision until the control room has it: {label, seq, hidden}
  let selected = null;
  let lastPing = Date.now();
  const LABEL = { confirm: "Confirmed", reject: "Rejected", unsure: "Can't tell" };
  // Where an alert stands (appliance/decisions/confirmation.py), as a badge.
  const STATE = { pending: "TO REVIEW", confirmed: "Confirmed", rejected: "Rejected", unsure: "Can't tell",
                  awaiting_second: "1 of 2 ✔", disputed: "Disputed" };
  const ASK = { confirm: "Confirm: this IS the watchlist person", reject: "Reject: this is NOT the person",
                unsure: "Can't tell from these pictures" };

  // -- helpers ---------------------------------------------------------------------------------------
  async function api(path, options = {}) {
    const opts = Object.assign({ credentials: "same-origin", cache: "no-store" }, options);
    if (opts.method && opts.method !== "GET") {
      opts.headers = Object.assign({ "X-CSRF-Token": CSRF }, opts.headers || {});
    }
    const resp = await fetch(path, opts);
    if (resp.status === 401) { window.location.assign("/login"); throw new Error("logged out"); }
    return resp;
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function setCell(id, text, tone) {
    const v = $(id).querySelector(".v");
    v.textContent = text;
    v.className = "v" + (tone ? " " + tone : "");
  }
  const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour12: false });
  function ago(iso) {
    const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min ago";
  }
  function until(iso) {
    const s = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
    if (s <= 0) return null;
    if (s < 3600) return Math.ceil(s / 60) + " min";
    if (s < 2 * 86400) return Math.floor(s / 3600) + " h";
    return Math.floor(s / 86400) + " days";
  }
  const nameOf = (a) => (a.subject ? a.subject.display_name : "Subject " + a.subject_id);
  // This officer's own latest decision on the alert (the chosen button).
  const mine = (a) => a.decisions.filter((d) => d.officer_id === ME).pop() || null;
  const stateOf = (a) => (a.outcome ? a.outcome.state : (a.decisions.length ? "unsure" : "pending"));
  // Still needs this officer: nobody decided yet, or (two-officer rule) a colleague's confirmation awaits a second.
  const toReview = (a) => stateOf(a) === "pending" || (stateOf(a) === "awaiting_second" && !mine(a));
  // Newest first. Alerts of the same millisecond keep the order the server listed them in (the sort is stable
  // and the map keeps insertion order), so paging shows them exactly as the store pages them.
  const sorted = () => [...alerts.values()].sort((x, y) => (x.created_at === y.created_at ? 0 : x.created_at < y.created_at ? 1 : -1));
  const plural = (n, one, many) => n + " " + (n === 1 ? one : many);

  // -- alerts ----------------------------------------------------------------------------------------
  function merge(a) {
    alerts.set(a.event_id, a);
  }
  async function fetchPage(before, limit) {
    const q = "/api/alerts?limit=" + limit + (before ? "&before=" + encodeURIComponent(before) : "");
    const resp = await api(q);
    if (!resp.ok) throw new Error("alerts page refused: " + resp.status);
    return resp.json();
  }
  // The next older page below `oldest`, added to what is loaded. One request at a time.
  function loadOlder(limit = PAGE) {
    if (!paging) {
      paging = (async () => {
        try {
          const body = await fetchPage(oldest, limit);
          for (const a of body.alerts) if (!alerts.has(a.event_id)) merge(a);
          if (body.alerts.length) oldest = body.alerts[body.alerts.length - 1].event_id;
          moreOlder = body.more;
        } finally {
          paging = null;
          render();
        }
      })();
    }
    return paging;
  }
  // Undecided alerts are never left behind the paging: while the store counts more alerts without a decision
  // than are loaded, older pages are fetched. Two snapshots in a row must say so, because a snapshot taken just
  // before a decision may arrive just after it.
  const undecidedLoaded = () => [...alerts.values()].filter((a) => !a.decisions.length).length;
  async function sweepUndecided(now) {
    const short = () => moreOlder && Number.isFinite(lastCounters.pending) && undecidedLoaded() < lastCounters.pending;
    if (!short()) { shortfallSeen = false; return; }
    if (!now && !shortfallSeen) { shortfallSeen = true; return; }
    shortfallSeen = false;
    try {
      while (short()) await loadOlder(SWEEP_PAGE);
    } catch (e) { /* the next status snapshot tries again */ }
  }
  function addDecision(d) {
    const a = alerts.get(d.alert_id);
    if (!a || a.decisions.some((x) => x.event_id === d.event_id)) return;
    a.decisions.push(d);
    a.decisions.sort((x, y) => (x.created_at < y.created_at ? -1 : 1));
    if (d.outcome) a.outcome = d.outcome;
    render();
  }
  async function select(id) {
    selected = id;
    render();
    const resp = await api("/api/alerts/" + encodeURIComponent(id));
    if (resp.ok) { merge(await resp.json()); render(); }
  }
  function onLiveAlert(a) {
    merge(a);
    const cur = selected && alerts.get(selected);
    if (!cur || !toReview(cur)) { selected = a.event_id; }  // never pull an undecided alert away from the officer
    toast("NEW ALERT · " + nameOf(a));
    $("alert-panel").classList.add("fresh");
    setTimeout(() => $("alert-panel").classList.remove("fresh"), 4000);
    render();
  }
  let toastTimer = null;
  function toast(text) {
    const t = $("toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 4000);
  }

  // -- the notice about sending a decision to the control room ----------------------------------------
  // It follows the outbox, not a timer: "sending" until a backlog reading taken after the decision's commit
  // says 0 (the broker acknowledged every row, this decision's included), then "sent" for a moment.
  let sentTimer = null;
  function onBacklog(reading) {
    if (!reading || !(reading.seq > outbox.seq)) return;  // an older reading arriving late changes nothing
    outbox = reading;
    const n = reading.backlog;
    if (n !== null && n !== undefined) setCell("st-outbox", plural(n, "event", "events"), n > 0 ? "warn" : "ok");
    renderSending();
  }
  function renderSending() {
    const note = $("send-note");
    if (!sending) { note.hidden = true; return; }
    const sent = outbox.backlog === 0 && outbox.seq >= sending.seq;
    const link = lastStatus.broker;
    if (sent) {
      $("send-text").textContent = sending.label + " · sent to the control room";
      $("send-hide").hidden = true;
      note.className = "send-note sent";
      note.hidden = false;
      if (!sending.sent) {  // once: later status pushes must not keep it up
        sending.sent = true;
        const done = sending;
        clearTimeout(sentTimer);
        sentTimer = setTimeout(() => { if (sending === done) { sending = null; note.hidden = true; } }, 2500);
      }
      return;
    }
    const waiting = outbox.backlog ? " (" + plural(outbox.backlog, "event", "events") + " waiting)" : "";
    let text = sending.label + " · recorded · sending to the control room…";
    if (link === "off") text = sending.label + " · recorded on this device (no control-room link configured)";
    else if (link && link !== "up" && link !== "connected") {
      text = sending.label + " · recorded on this device · control room link down: sent when it is back" + waiting;
    }
    $("send-text").textContent = text;
    $("send-hide").hidden = false;
    note.className = "send-note";
    note.hidden = sending.hidden;
  }
  $("send-hide").addEventListener("click", () => { if (sending) { sending.hidden = true; renderSending(); } });

  function render() {
    renderQueue();
    const a = selected && alerts.get(selected);
    $("empty").hidden = !!a;
    $("alert").hidden = !a;
    if (a) renderAlert(a);
  }
  // Rows are kept per alert and moved, not rebuilt, so a long list does not fetch its thumbnails again.
  const rows = new Map();  // event_id -> <li>
  function queueRow(a) {
    let li = rows.get(a.event_id);
    if (!li) {
      li = el("li");
      li.dataset.id = a.event_id;
      li.tabIndex = 0;
      li.setAttribute("role", "button");
      const img = el("img");
      img.alt = "";
      img.loading = "lazy";
      const who = el("div", "who");
      who.append(el("b"), el("span"));
      li.append(img, who, el("span", "st"));
      li.addEventListener("click", () => select(a.event_id));
      li.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(a.event_id); }
      });
      rows.set(a.event_id, li);
    }
    const img = li.firstChild;
    if (!a.crop_url) img.removeAttribute("src");
    else if (img.getAttribute("src") !== a.crop_url) img.src = a.crop_url;
    li.querySelector(".who b").textContent = nameOf(a);
    li.querySelector(".who span").textContent = clock(a.created_at) + " · " + (a.category || "");
    const state = stateOf(a);
    const st = li.querySelector(".st");
    st.className = "st s-" + state;
    st.textContent = STATE[state] || state;
    li.classList.toggle("selected", a.event_id === selected);
    return li;
  }
  function renderQueue() {
    const list = sorted();
    $("queue").replaceChildren(...list.map(queueRow));
    const pending = list.filter(toReview).length;
    $("q-pending").textContent = pending ? "· " + pending + " to review" : "";
    const more = $("q-older");
    more.hidden = !moreOlder;
    more.disabled = !!paging;
    const total = lastCounters.alerts;
    more.textContent = paging ? "Loading older alerts…" : "Show older alerts" +
      (Number.isFinite(total) && total > list.length ? " (" + (total - list.length).toLocaleString() + " more)" : "");
    $("q-end").hidden = moreOlder || !list.length;
    $("q-end").textContent = "All alerts shown · " + list.length.toLocaleString();
  }
  function renderAlert(a) {
    const crop = $("crop"), ref = $("reference");
    if (crop.dataset.src !== (a.crop_url || "")) {
      crop.dataset.src = a.crop_url || "";
      if (a.crop_url) { crop.src = a.crop_url; crop.classList.remove("missing"); }
      else { crop.removeAttribute("src"); crop.alt = "Live face deleted (retention period over)"; crop.classList.add("missing"); }
    }
    if (ref.dataset.src !== (a.reference_url || "")) {
      ref.dataset.src = a.reference_url || "";
      if (a.reference_url) { ref.src = a.reference_url; ref.classList.remove("missing"); }
      else { ref.removeAttribute("src"); ref.alt = "No reference photo (subject no longer on the watchlist)"; ref.classList.add("missing"); }
    }
    $("a-name").textContent = nameOf(a);
    $("a-category").textContent = (a.subject && a.subject.category) || a.category;
    const notes = a.subject && a.subject.notes;
    $("a-notes").textContent = notes || (a.subject ? "No notes on the watchlist." : "No longer on the watchlist.");
    $("a-notes").classList.toggle("none", !notes);
    $("a-time").textContent = clock(a.created_at);
    $("a-age").textContent = "(" + ago(a.created_at) + ")";
    // When the face was photographed and since when the person was in view: only for alerts that carry them.
    const seen = [];
    if (a.captured_at) seen.push("photo " + clock(a.captured_at));
    if (a.first_seen_at) seen.push("in view since " + clock(a.first_seen_at));
    if (seen.length && a.looks) seen.push(plural(a.looks, "matching look", "matching looks"));
    $("a-seen").textContent = seen.join(" · ");
    $("a-seen").hidden = !seen.length;
    const score = Number(a.score), thr = Number(a.threshold);
    $("a-score-value").textContent = "Match score " + score.toFixed(2);
    const diff = score - thr;
    const floor = lastStatus.threshold_floor;
    $("a-score-threshold").textContent = "alert threshold " + thr.toFixed(2) +
      (floor !== null && floor !== undefined ? " · floor " + Number(floor).toFixed(2) : "") + " · " +
      Math.abs(diff).toFixed(2) + (diff >= 0 ? " above" : " below");
    const pct = (x) => Math.max(0, Math.min(100, x * 100)) + "%";
    $("a-score-fill").style.width = pct(score);
    $("a-score-mark").style.left = "calc(" + pct(thr) + " - 2px)";
    const d = mine(a);
    for (const b of document.querySelectorAll(".actions .btn")) {
      b.classList.toggle("chosen", !!d && b.dataset.decision === d.decision);
    }
    const oc = $("a-outcome");
    const state = stateOf(a);
    oc.hidden = !(state === "awaiting_second" || state === "disputed");
    if (state === "awaiting_second") {
      oc.textContent = "Confirmed by " + a.outcome.confirmed_by.join(", ") +
        ". Two-officer rule: it counts as confirmed only when a second officer confirms it too.";
    } else if (state === "disputed") {
      oc.textContent = "Officers disagree (confirmed by " + a.outcome.confirmed_by.join(", ") + ", rejected by " +
        a.outcome.rejected_by.join(", ") + "). It is not forwarded as confirmed.";
    }
    const hist = $("a-history");
    hist.replaceChildren();
    if (!a.decisions.length) hist.append(el("li", "nothing", "No decision yet. The alert is only a suggestion until an officer decides."));
    for (const x of a.decisions) {
      const li = el("li");
      li.append(el("span", "d d-" + x.decision, LABEL[x.decision]), el("span", null, clock(x.created_at)),
                el("span", null, "by " + x.officer_id));
      if (x.note) li.append(el("span", "note", "“" + x.note + "”"));
      hist.append(li);
    }
  }

  // -- deciding --------------------------------------------------------------------------------------
  const dialog = $("decide-dialog");
  let choice = null;
  for (const b of document.querySelectorAll(".actions .btn")) {
    b.addEventListener("click", () => {
      const a = alerts.get(selected);
      if (!a) return;
      choice = b.dataset.decision;
      $("d-title").textContent = ASK[choice];
      $("d-subject").textContent = nameOf(a) + " · alert at " + clock(a.created_at);
      $("d-note").value = "";
      $("d-error").textContent = "";
      $("d-record").className = "btn btn-" + choice;
      dialog.showModal();
    });
  }
  $("d-cancel").addEventListener("click", () => dialog.close());
  $("decide-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const id = selected;
    $("d-record").disabled = true;
    try {
      const resp = await api("/api/alerts/" + encodeURIComponent(id) + "/decision", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ decision: choice, note: $("d-note").value.trim() || null }),
      });
      const body = await resp.json();
      if (!resp.ok) { $("d-error").textContent = body.error || "Not recorded. Try again."; return; }
      addDecision(body);
      dialog.close();
      if (body.outbox) {
        sending = { label: LABEL[choice], seq: body.outbox.seq, hidden: false };
        clearTimeout(sentTimer);
        onBacklog(body.outbox);
        renderSending();
      } else toast(LABEL[choice] + " · recorded");
    } catch (e) {
      $("d-error").textContent = "Not recorded: the console cannot reach the device. Try again.";
    } finally {
      $("d-record").disabled = false;
    }
  });

  // -- status strip and counters ---------------------------------------------------------------------
  function renderStatus(snap) {
    const s = snap.status || {}, c = snap.counters || {};
    const dep = s.deployment;
    lastStatus = s;
    renderDeployment(s);
    renderWarnings(s.warnings || []);
    if (dep) {
      const end = dep.planned_end ? " · ends " + clock(dep.planned_end).slice(0, 5) : "";
      const matching = s.matching === false ? " · NOT matching" : "";
      const text = (dep.purpose || dep.location || dep.id || "active") + end + matching;
      setCell("st-deployment", text, matching ? "warn" : "ok");
      $("st-deployment").title = "Deployment: " + text + " (tap for details)";
    } else {
      setCell("st-deployment", "none · not matching", "warn");
      $("st-deployment").title = "No deployment active (tap for details)";
    }
    renderDeploymentDetails(s);
    const cam = s.camera_state || s.camera;
    if (s.camera_fps === null || s.camera_fps === undefined || (cam && cam !== "running")) {
      setCell("st-camera", cam ? cam.toUpperCase() : "no camera", "bad");
    } else setCell("st-camera", Number(s.camera_fps).toFixed(1) + " fps", s.camera_fps < 5 ? "warn" : "ok");
    if (s.watchlist_version === null || s.watchlist_version === undefined) setCell("st-watchlist", "none loaded", "bad");
    else {
      const left = s.watchlist_expires_at ? until(s.watchlist_expires_at) : null;
      if (s.watchlist_expires_at && !left) setCell("st-watchlist", "v" + s.watchlist_version + " EXPIRED", "bad");
      else setCell("st-watchlist", "v" + s.watchlist_version + (left ? " · " + left + " left" : ""), left && !left.includes("days") ? "warn" : "ok");
    }
    const link = s.broker || "unknown";
    if (link === "up" || link === "connected") setCell("st-broker", "connected", "ok");
    else if (link === "off") setCell("st-broker", "off (no MQTT)", "warn");
    else setCell("st-broker", link === "down" ? "DOWN · queuing" : link, "bad");
    lastCounters = c;
    if (snap.outbox) onBacklog(snap.outbox);
    else if (s.outbox_backlog !== undefined && s.outbox_backlog !== null) {
      setCell("st-outbox", plural(s.outbox_backlog, "event", "events"), s.outbox_backlog > 0 ? "warn" : "ok");
    }
    renderSending();
    sweepUndecided(false);
    const num = (v) => (v === null || v === undefined ? "–" : Number(v).toLocaleString());
    $("c-faces").textContent = num(s.faces_seen);
    $("c-alerts").textContent = num(c.alerts);
    $("c-confirmed").textContent = num(c.confirmed);
    $("c-rejected").textContent = num(c.rejected);
    const share = c.rejected_share !== undefined ? c.rejected_share : s.rejected_share;
    const decided = (c.confirmed || 0) + (c.rejected || 0) + (c.unsure || 0);
    $("r-measured").textContent = share === null || share === undefined ? "–" : Math.round(share * 100) + " %";
    $("r-measured-n").textContent = decided ? "measured: " + c.rejected + " of " + decided + " decided alerts" : "no decisions yet";
    const rate = s.expected_false_alert_rate;
    $("r-expected").textContent = rate ? "1 in " + Math.round(1 / rate).toLocaleString() : "–";
    // The honest end: with few false alarms in the evaluation, the exact 95 % bound is well above the point figure.
    const upper = s.expected_false_alert_rate_upper;
    const bound = rate && upper ? " · up to 1 in " + Math.round(1 / upper).toLocaleString() + " (95 %)" : "";
    $("r-expected-src").textContent = rate ? "per face seen" + bound + " · " + (s.expected_rate_source || "from the evaluation") : "not calibrated";
  }

  // A van whose pipeline is not the one its threshold was calibrated on says so on every page: the scores may
  // not mean what the threshold assumes. The officer still decides every alert; the technician must act.
  function renderWarnings(warnings) {
    const box = $("pipeline-warning");
    box.hidden = warnings.length === 0;
    box.textContent = warnings.length
      ? "⚠ Check with the technician: " + warnings.join(" · ") + ". Alerts still need your decision as always."
      : "";
  }

  // -- starting and ending a deployment (the logged-in officer authorises) ------------------------------
  function renderDeployment(s) {
    if (!DEPLOYMENTS) return;
    const dep = s.deployment;
    $("dep-panel").hidden = false;
    $("dep-start").hidden = !!dep;
    $("dep-end").hidden = !dep;
    $("dep-details").hidden = !dep;
    let thr = "";
    if (s.threshold !== null && s.threshold !== undefined) {
      thr = " · threshold " + Number(s.threshold).toFixed(2) +
        (s.threshold_floor !== null && s.threshold_floor !== undefined ? " · floor " + Number(s.threshold_floor).toFixed(2) : "");
    }
    $("dep-text").textContent = dep
      ? dep.id + " · " + dep.purpose + " · " + dep.location + " · by " + dep.authorised_by +
        (dep.planned_end ? " · ends " + clock(dep.planned_end).slice(0, 5) : "")
      : "None active: no face is checked.";
    $("dep-thr").textContent = thr.replace(/^ · /, "");
  }
  // The full deployment, purpose included, however long: the strip and the panel show only its first lines.
  const depDialog = $("dep-dialog");
  function renderDeploymentDetails(s) {
    const dep = s.deployment;
    $("dd-none").hidden = !!dep;
    $("dd-list").hidden = !dep;
    if (!dep) return;
    const when = (iso) => (iso ? new Date(iso).toLocaleString([], { hour12: false }) : "–");
    $("dd-purpose").textContent = dep.purpose || "–";
    $("dd-location").textContent = dep.location || "–";
    $("dd-by").textContent = dep.authorised_by || "–";
    $("dd-start").textContent = when(dep.starts_at);
    $("dd-end").textContent = when(dep.planned_end);
    $("dd-id").textContent = dep.id || "–";
    $("dd-matching").textContent = s.matching === false ? "NOT matching" : "matching faces against the watchlist";
  }
  function openDeploymentDetails() {
    renderDeploymentDetails(lastStatus);
    depDialog.showModal();
  }
  $("st-deployment").addEventListener("click", openDeploymentDetails);
  $("dep-details").addEventListener("click", openDeploymentDetails);
  $("dd-close").addEventListener("click", () => depDialog.close());
  async function refreshStatus() {
    try { renderStatus(await (await api("/api/status")).json()); } catch (e) { /* the stream catches up */ }
  }
  const startDialog = $("start-dialog"), endDialog = $("end-dialog");
  $("dep-start").addEventListener("click", () => { $("s-error").textContent = ""; startDialog.showModal(); });
  $("s-cancel").addEventListener("click", () => startDialog.close());
  $("start-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const num = (id) => ($(id).value.trim() === "" ? null : Number($(id).value));
    const body = { purpose: $("s-purpose").value.trim(), location: $("s-location").value.trim(),
                   dpia: $("s-dpia").value.trim(), hours: num("s-hours"), lat: num("s-lat"), lon: num("s-lon") };
    $("s-submit").disabled = true;
    try {
      const resp = await api("/api/deployment/start", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const out = await resp.json();
      if (!resp.ok) { $("s-error").textContent = out.error || "Not started. Try again."; return; }
      startDialog.close();
      toast("Deployment " + out.deployment.id + " started");
      await refreshStatus();
    } catch (e) {
      $("s-error").textContent = "Not started: the console cannot reach the device. Try again.";
    } finally {
      $("s-submit").disabled = false;
    }
  });
  $("dep-end").addEventListener("click", () => {
    const dep = lastStatus.deployment;
    $("e-text").textContent = dep ? dep.id + " · " + dep.purpose + " · " + dep.location : "";
    $("e-error").textContent = "";
    endDialog.showModal();
  });
  $("e-cancel").addEventListener("click", () => endDialog.close());
  $("end-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const dep = lastStatus.deployment;
    $("e-submit").disabled = true;
    try {
      const resp = await api("/api/deployment/end", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify(dep ? { id: dep.id } : {}) });
      const out = await resp.json();
      if (!resp.ok) { $("e-error").textContent = out.error || "Not ended. Try again."; return; }
      endDialog.close();
      toast("Deployment ended · matching stopped");
      await refreshStatus();
    } catch (e) {
      $("e-error").textContent = "Not ended: the console cannot reach the device. Try again.";
    } finally {
      $("e-submit").disabled = false;
    }
  });

  // -- live stream -----------------------------------------------------------------------------------
  let reconnecting = false;
  async function refreshNewest() {
    try {
      const body = await fetchPage(null, PAGE);
      for (const a of body.alerts) merge(a);
      render();
    } catch (e) { /* the next reconnect tries again */ }
  }
  function connect() {
    const es = new EventSource("/api/stream");
    es.addEventListener("open", () => {
      setCell("st-live", "live", "ok");
      if (reconnecting) refreshNewest();  // alerts and decisions made while the stream was down
      reconnecting = false;
    });
    es.addEventListener("alert", (e) => onLiveAlert(JSON.parse(e.data)));
    es.addEventListener("decision", (e) => addDecision(JSON.parse(e.data)));
    es.addEventListener("status", (e) => renderStatus(JSON.parse(e.data)));
    es.addEventListener("deployment", () => refreshStatus());
    es.addEventListener("outbox", (e) => onBacklog(JSON.parse(e.data)));
    es.addEventListener("expired", () => window.location.assign("/login"));
    es.addEventListener("reload", () => window.location.reload());
    es.addEventListener("error", () => {
      reconnecting = true;
      setCell("st-live", "reconnecting", "bad");
      if (es.readyState === EventSource.CLOSED) {
        api("/api/session").then(() => setTimeout(connect, 2000)).catch(() => {});
      }
    });
  }

  async function start() {
    if (TWO_OFFICER) document.querySelector(".history h2").textContent = "Decisions · two-officer rule: two must confirm";
    connect();  // first, so that nothing committed while the list loads is missed (merge drops duplicates)
    const body = await fetchPage(null, PAGE);
    for (const a of body.alerts) merge(a);
    if (body.alerts.length) oldest = body.alerts[body.alerts.length - 1].event_id;
    moreOlder = body.more;
    renderStatus(await (await api("/api/status")).json());  // the store's count of undecided alerts
    await sweepUndecided(true);
    const list = sorted();
    const first = list.find(toReview) || list[0];
    if (first) {
      await select(first.event_id);
      // Show its row in the queue (scrolling the queue only, never the page).
      const row = rows.get(first.event_id), box = $("queue").parentElement;
      const below = row ? row.getBoundingClientRect().bottom - box.getBoundingClientRect().bottom : 0;
      if (below > 0) box.scrollTop += below + 8;
    } else render();
  }

  // An officer touching the screen keeps the session alive; an unattended screen logs out.
  for (const kind of ["pointerdown", "keydown"]) {
    document.addEventListener(kind, () => {
      if (Date.now() - lastPing > 60000) { lastPing = Date.now(); api("/api/ping", { method: "POST" }).catch(() => {}); }
    }, { passive: true });
  }
  $("q-older").addEventListener("click", () => loadOlder().catch(() => toast("Older alerts could not be loaded. Try again.")));
  $("logout").addEventListener("click", async () => {
    try { await api("/logout", { method: "POST" }); } finally { window.location.assign("/login"); }
  });
  setInterval(() => { const a = selected && alerts.get(selected); if (a) $("a-age").textContent = "(" + ago(a.created_at) + ")"; }, 5000);
  start();
})();
