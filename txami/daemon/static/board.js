// The txami call board: reads /pbx/NAME/state/stream (a snapshot, then one delta per
// change) and draws calls, queues, bridges, lamps and the connection's health.
// Plain JavaScript, no framework; every text from the PBX goes in as textContent.
"use strict";

(() => {
  const TOKEN_KEY = "txami.board.token";
  const PBX_KEY = "txami.board.pbx";
  const FIELD_KEY = "txami.board.field.";
  const STALL_MS = 45000; // the daemon sends a keepalive every 15 s
  const HEALTH_MS = 10000;

  const $ = (id) => document.getElementById(id);
  const store = window.sessionStorage;

  let token = store.getItem(TOKEN_KEY) || "";
  let who = null; // GET /whoami
  let pbx = null; // the PBX on show
  let model = null; // its snapshot, kept current by the deltas
  let status = null; // its session: connected, logged_in, synced, last_error
  let seq = 0;
  let offset = 0; // the daemon's clock minus ours, in seconds
  let controller = null; // aborts the current stream
  let reconnects = 0;
  let retryTimer = null;
  let stallTimer = null;
  let healthTimer = null;
  let health = null;
  let streaming = false;
  let drawQueued = false;

  // --- small helpers -------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("data-")) node.setAttribute(key, value);
      else node[key] = value;
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function now() {
    return Date.now() / 1000 + offset;
  }

  function since(seconds) {
    let s = Math.max(0, Math.floor(now() - seconds));
    const h = Math.floor(s / 3600);
    s -= h * 3600;
    const m = Math.floor(s / 60);
    s -= m * 60;
    const two = (n) => String(n).padStart(2, "0");
    return h ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
  }

  function callerId(name, num) {
    if (name && num && name !== num) return `${name} <${num}>`;
    return name || num || "unknown";
  }

  function may(action) {
    const grant = who && pbx && who.pbxs[pbx];
    return Boolean(grant && grant.actions.includes(action));
  }

  function show(id, visible) {
    $(id).hidden = !visible;
  }

  function toast(text, bad) {
    const node = el("div", { class: bad ? "toast bad" : "toast", text });
    $("toasts").append(node);
    setTimeout(() => node.remove(), bad ? 8000 : 4000);
  }

  function banner(text) {
    $("banner").textContent = text || "";
    show("banner", Boolean(text));
  }

  function setBadge(id, text, kind) {
    const node = $(id);
    node.textContent = text;
    node.className = `badge ${kind || ""}`;
    node.hidden = false;
  }

  // Keeps a container's children in the order of `items`, one element per key, reusing
  // elements so that focus and scroll survive a redraw.
  function keyed(container, items, keyOf, make, update) {
    const old = new Map();
    for (const child of container.children) old.set(child.dataset.key, child);
    let previous = null;
    for (const item of items) {
      const key = keyOf(item);
      let node = old.get(key);
      if (node) old.delete(key);
      else {
        node = make(item);
        node.dataset.key = key;
      }
      update(node, item);
      const wanted = previous ? previous.nextSibling : container.firstChild;
      if (wanted !== node) container.insertBefore(node, wanted);
      previous = node;
    }
    for (const node of old.values()) node.remove();
  }

  // --- talking to the daemon -----------------------------------------------------------

  function request(path, options) {
    const init = Object.assign({ cache: "no-store" }, options || {});
    init.headers = Object.assign({}, init.headers || {});
    if (token) init.headers.Authorization = `Bearer ${token}`;
    return fetch(path, init);
  }

  async function action(name, headers, what) {
    let response;
    try {
      response = await request(`/pbx/${encodeURIComponent(pbx)}/actions/${name}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(headers),
      });
    } catch (error) {
      toast(`${what}: the daemon is unreachable`, true);
      return;
    }
    let body = {};
    try {
      body = await response.json();
    } catch (error) {
      body = {};
    }
    if (response.ok) toast(`${what}: done`);
    else toast(`${what}: ${body.message || response.status}`, true);
  }

  // --- signing in ----------------------------------------------------------------------

  function askToken(message) {
    stopStream();
    show("board", false);
    show("forget", false);
    show("call-button", false);
    show("pbx-picker", false);
    $("pbx-status").hidden = true;
    $("who").textContent = "";
    setBadge("link", "signed out", "");
    banner("");
    $("login-error").textContent = message || "";
    show("login", true);
    $("token").focus();
  }

  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token").value.trim();
    $("token").value = "";
    store.setItem(TOKEN_KEY, token);
    show("login", false);
    start();
  });

  $("forget").addEventListener("click", () => {
    token = "";
    store.removeItem(TOKEN_KEY);
    who = null;
    model = null;
    clearBoard();
    askToken("");
  });

  async function start() {
    clearTimeout(retryTimer);
    setBadge("link", "connecting…", "wait");
    let response;
    try {
      response = await request("/whoami");
    } catch (error) {
      unreachable();
      return;
    }
    if (response.status === 401) {
      askToken(token ? "That token is not accepted." : "");
      return;
    }
    if (!response.ok) {
      unreachable();
      return;
    }
    who = await response.json();
    const readable = Object.keys(who.pbxs).filter((name) => who.pbxs[name].read);
    $("who").textContent = token ? `token: ${who.name}` : "";
    show("forget", Boolean(token));
    if (!readable.length) {
      banner(`The token '${who.name}' may not read any PBX of this daemon.`);
      setBadge("link", "no access", "bad");
      return;
    }
    const picker = $("pbx");
    picker.replaceChildren(...readable.map((name) => el("option", { value: name, text: name })));
    const kept = store.getItem(PBX_KEY);
    pbx = readable.includes(kept) ? kept : readable.includes(pbx) ? pbx : readable[0];
    picker.value = pbx;
    show("pbx-picker", readable.length > 1);
    clearBoard();
    connect();
  }

  $("pbx").addEventListener("change", () => {
    pbx = $("pbx").value;
    store.setItem(PBX_KEY, pbx);
    model = null;
    clearBoard();
    connect();
  });

  // --- the state stream ----------------------------------------------------------------

  function stopStream() {
    streaming = false;
    if (controller) controller.abort();
    controller = null;
    clearTimeout(stallTimer);
    clearTimeout(retryTimer);
    clearInterval(healthTimer);
  }

  function unreachable(why) {
    stopStream();
    const delay = Math.min(10, 2 ** reconnects);
    reconnects += 1;
    setBadge("link", `daemon unreachable, retrying in ${delay} s`, "bad");
    banner(why || "The daemon is unreachable. The board shows what it knew and reconnects by itself.");
    $("board").classList.add("stale");
    drawHealth();
    retryTimer = setTimeout(start, delay * 1000);
  }

  function watchdog() {
    clearTimeout(stallTimer);
    stallTimer = setTimeout(() => unreachable("The daemon stopped answering."), STALL_MS);
  }

  async function connect() {
    stopStream();
    const mine = (controller = new AbortController());
    setBadge("link", "connecting…", "wait");
    let response;
    try {
      response = await request(`/pbx/${encodeURIComponent(pbx)}/state/stream`, {
        signal: mine.signal,
        headers: { Accept: "text/event-stream" },
      });
    } catch (error) {
      if (!mine.signal.aborted) unreachable();
      return;
    }
    if (response.status === 401) {
      askToken("The token is no longer accepted.");
      return;
    }
    if (response.status === 403) {
      const body = await response.json().catch(() => ({}));
      banner(body.message || "This token may not read this PBX.");
      setBadge("link", "no access", "bad");
      return;
    }
    if (!response.ok || !response.body) {
      unreachable(`The daemon answered ${response.status}.`);
      return;
    }
    streaming = true;
    refreshHealth();
    healthTimer = setInterval(refreshHealth, HEALTH_MS);
    watchdog();
    try {
      await readEvents(response.body, mine.signal);
    } catch (error) {
      // the stream broke: handled below
    }
    if (!mine.signal.aborted) unreachable("The connection to the daemon was lost.");
  }

  async function readEvents(body, signal) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let scanned = 0;
    while (!signal.aborted) {
      const { value, done } = await reader.read();
      if (done) return;
      watchdog();
      buffer += decoder.decode(value, { stream: true });
      let cut = buffer.indexOf("\n\n", scanned);
      while (cut >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        dispatch(block);
        cut = buffer.indexOf("\n\n");
      }
      scanned = Math.max(0, buffer.length - 1);
    }
  }

  function dispatch(block) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return;
    const message = JSON.parse(data.join("\n"));
    if (message.pbx !== pbx) return;
    if (event === "snapshot") {
      model = message.state;
      status = message.status;
      seq = message.seq;
      offset = model.time - Date.now() / 1000;
      reconnects = 0;
      setBadge("link", "live", "good");
      $("board").classList.remove("stale");
      show("board", true);
      draw();
    } else if (event === "resync") {
      setBadge("link", "re-syncing…", "wait");
    } else if (event === "delta" && model) {
      if (message.seq !== seq + 1) {
        connect(); // a gap: start again from a snapshot
        return;
      }
      seq = message.seq;
      apply(message);
      queueDraw();
    }
  }

  const COLLECTIONS = {
    channel: "channels",
    bridge: "bridges",
    call: "calls",
    queue: "queues",
    device: "devices",
    hint: "hints",
    presence: "presences",
  };

  function apply(delta) {
    const put = delta.op === "put";
    if (delta.type === "status") {
      status = delta.data;
      model.synced = status.synced;
      return;
    }
    if (delta.type === "member" || delta.type === "entry") {
      const queue = model.queues[delta.queue];
      if (!queue) return;
      if (delta.type === "member") {
        if (put) queue.members[delta.key] = delta.data;
        else delete queue.members[delta.key];
      } else {
        queue.entries = queue.entries.filter((entry) => entry.uniqueid !== delta.key);
        if (put) queue.entries.push(delta.data);
        queue.entries.sort((a, b) => a.position - b.position);
      }
      return;
    }
    const collection = model[COLLECTIONS[delta.type]];
    if (!collection) return;
    if (put) collection[delta.key] = delta.data;
    else delete collection[delta.key];
  }

  async function refreshHealth() {
    if (!pbx) return;
    try {
      const response = await request(`/pbx/${encodeURIComponent(pbx)}/health`);
      if (response.status === 401 || response.status === 403) return;
      health = await response.json();
    } catch (error) {
      health = null;
    }
    drawHealth();
  }

  // --- drawing -------------------------------------------------------------------------

  function queueDraw() {
    if (drawQueued) return;
    drawQueued = true;
    requestAnimationFrame(() => {
      drawQueued = false;
      draw();
    });
  }

  function clearBoard() {
    for (const id of ["calls", "queues", "bridges", "hints", "devices", "health"]) {
      $(id).replaceChildren();
    }
  }

  function draw() {
    if (!model) return;
    drawStatus();
    drawCalls();
    drawQueues();
    drawBridges();
    drawLamps();
    drawHealth();
    show("call-button", may("Originate"));
    tick();
  }

  function drawStatus() {
    if (!status) return;
    if (!status.connected || !status.logged_in) {
      const why = status.last_error ? ` (${status.last_error})` : "";
      setBadge("pbx-status", `PBX ${pbx} unreachable`, "bad");
      banner(`The PBX ${pbx} is unreachable${why}; the board shows what was known and follows it once it is back.`);
      $("board").classList.add("stale");
    } else if (!status.synced) {
      setBadge("pbx-status", `PBX ${pbx}: syncing…`, "wait");
      banner("");
    } else {
      setBadge("pbx-status", `PBX ${pbx} up`, "good");
      banner("");
      $("board").classList.remove("stale");
    }
  }

  function channelOf(uniqueid) {
    return model.channels[uniqueid];
  }

  function drawCalls() {
    const calls = Object.values(model.calls).sort((a, b) => a.started - b.started);
    $("calls-count").textContent = calls.length ? `(${calls.length})` : "";
    show("calls-empty", !calls.length);
    keyed($("calls"), calls, (call) => call.id, makeCall, updateCall);
  }

  function makeCall(call) {
    return el(
      "article",
      { class: "card", "data-call": call.id },
      el(
        "div",
        { class: "card-head" },
        el("span", { class: "card-title" }),
        el("span", { class: "call-state muted small" }),
        el("span", { class: "duration", title: "since the call started" }),
      ),
      el("ul", { class: "channels" }),
    );
  }

  // What an operator calls the state of a call: ringing, in a queue, talking, answered.
  function callState(call, channels) {
    if (call.answered === null || call.answered === undefined) return ["ringing", "ringing"];
    for (const queue of Object.values(model.queues)) {
      if (queue.entries.some((entry) => call.channels.includes(entry.uniqueid))) {
        return ["ringing", `waiting in ${queue.name}`];
      }
    }
    for (const bridgeId of call.bridges) {
      const bridge = model.bridges[bridgeId];
      if (bridge && bridge.channels.length > 1) {
        return ["answered", bridge.technology === "softmix" ? "in a conference" : "talking"];
      }
    }
    const held = channels.some((channel) => channel.on_hold);
    return ["answered", held ? "on hold" : "answered"];
  }

  function updateCall(node, call) {
    const channels = call.channels.map(channelOf).filter(Boolean);
    const first = channels[0];
    const [kind, text] = callState(call, channels);
    node.className = `card ${kind}`;
    node.querySelector(".card-title").textContent = first
      ? callerId(first.caller_id_name, first.caller_id_num)
      : call.id;
    const to = first && (first.connected_line_num || first.connected_line_name);
    const other = to ? ` with ${callerId(first.connected_line_name, first.connected_line_num)}` : "";
    node.querySelector(".call-state").textContent = `${text}${other}`;
    node.querySelector(".duration").dataset.since = call.started;
    keyed(node.querySelector(".channels"), channels, (c) => c.uniqueid, makeChannel, updateChannel);
  }

  function makeChannel(channel) {
    const item = el(
      "li",
      { "data-channel": channel.uniqueid },
      el("span", { class: "chan-main cid" }),
      el("span", { class: "chan-detail" }, el("span", { class: "name" }), " ", el("span", { class: "chan-state muted small" })),
      el("span", { class: "duration small", title: "since the channel was answered (or created)" }),
    );
    const buttons = el("span", { class: "actions" });
    if (may("Hangup")) {
      buttons.append(
        el("button", {
          type: "button",
          class: "danger",
          text: "Hang up",
          "data-action": "hangup",
          onclick: () => hangup(channel.uniqueid),
        }),
      );
    }
    if (may("Redirect")) {
      buttons.append(
        el("button", {
          type: "button",
          text: "Redirect…",
          "data-action": "redirect",
          onclick: () => redirect(channel.uniqueid),
        }),
      );
    }
    if (buttons.children.length) item.append(buttons);
    return item;
  }

  function updateChannel(item, channel) {
    item.classList.toggle("local", channel.name.startsWith("Local/"));
    item.querySelector(".cid").textContent = callerId(channel.caller_id_name, channel.caller_id_num);
    const parts = [channel.state_desc];
    if (channel.on_hold) parts.push("on hold");
    if (channel.application) parts.push(channel.application);
    item.querySelector(".chan-state").textContent = `· ${parts.join(" · ")}`;
    item.querySelector(".name").textContent = channel.name;
    item.querySelector(".duration").dataset.since = channel.answered || channel.created;
    for (const button of item.querySelectorAll("button")) {
      button.setAttribute("aria-label", `${button.textContent} ${channel.name}`);
    }
  }

  function drawQueues() {
    const queues = Object.values(model.queues).sort((a, b) => a.name.localeCompare(b.name));
    show("queues-empty", !queues.length);
    keyed($("queues"), queues, (q) => q.name, makeQueue, updateQueue);
  }

  function counter(label) {
    return el("div", { class: "counter" }, el("b", { text: "0" }), el("span", { text: label }));
  }

  const COUNTERS = [
    ["waiting", "waiting"],
    ["longest", "longest wait"],
    ["available", "available"],
    ["completed", "answered"],
    ["abandoned", "abandoned"],
    ["holdtime", "avg hold (s)"],
    ["talktime", "avg talk (s)"],
  ];

  function makeQueue(queue) {
    const counters = el("div", { class: "counters" });
    for (const [key, label] of COUNTERS) {
      const node = counter(label);
      node.dataset.counter = key;
      counters.append(node);
    }
    return el(
      "div",
      { class: "queue", "data-queue": queue.name },
      el("h3", { class: "queue-title" }),
      counters,
      el("h4", { class: "muted small", text: "Members" }),
      el("ul", { class: "members" }),
      el("h4", { class: "muted small", text: "Waiting callers" }),
      el("p", { class: "empty small waiting-empty", text: "Nobody waits." }),
      el("ul", { class: "waiting" }),
    );
  }

  function updateQueue(node, queue) {
    node.querySelector(".queue-title").textContent = `${queue.name} (${queue.strategy || "queue"})`;
    const members = Object.values(queue.members).sort((a, b) => (a.name || a.interface).localeCompare(b.name || b.interface));
    const entries = queue.entries;
    const available = members.filter((m) => !m.paused && (m.status === 1 || m.status === 0) && !m.in_call).length;
    const longest = entries.length ? Math.min(...entries.map((e) => e.joined)) : null;
    const values = {
      waiting: String(entries.length),
      longest: longest === null ? "–" : null,
      available: String(available),
      completed: String(queue.completed),
      abandoned: String(queue.abandoned),
      holdtime: String(queue.holdtime),
      talktime: String(queue.talktime),
    };
    for (const [key, value] of Object.entries(values)) {
      const b = node.querySelector(`[data-counter="${key}"] b`);
      if (value === null) {
        b.dataset.since = longest;
        b.classList.add("duration");
      } else {
        delete b.dataset.since;
        b.textContent = value;
      }
    }
    keyed(node.querySelector(".members"), members, (m) => m.interface, (m) => makeMember(queue.name, m), updateMember);
    node.querySelector(".waiting-empty").hidden = entries.length > 0;
    keyed(node.querySelector(".waiting"), entries, (e) => e.uniqueid, makeEntry, updateEntry);
  }

  function makeMember(queueName, member) {
    const item = el(
      "li",
      { "data-member": member.interface },
      el("span", { class: "lamp" }),
      el("span", { class: "cid member-name" }),
      el("span", { class: "name" }),
      el("span", { class: "member-state muted" }),
      el("span", { class: "member-calls muted small" }),
    );
    if (may("QueuePause")) {
      item.append(
        el(
          "span",
          { class: "actions" },
          el("button", {
            type: "button",
            "data-action": "pause",
            onclick: () => pause(queueName, member.interface),
          }),
        ),
      );
    }
    return item;
  }

  function updateMember(item, member) {
    item.querySelector(".lamp").className = `lamp ${member.paused ? "off" : deviceLamp(member.status_text)}`;
    item.querySelector(".member-name").textContent = member.name || member.interface;
    item.querySelector(".name").textContent = member.name && member.name !== member.interface ? member.interface : "";
    const paused = member.paused ? ` · paused${member.paused_reason ? ` (${member.paused_reason})` : ""}` : "";
    item.querySelector(".member-state").textContent = `${member.status_text.toLowerCase().replace(/_/g, " ")}${paused}`;
    item.querySelector(".member-calls").textContent = `${member.calls_taken} calls${member.in_call ? " · in a call" : ""}`;
    const button = item.querySelector("button");
    if (button) {
      button.textContent = member.paused ? "Unpause" : "Pause…";
      button.dataset.paused = member.paused ? "yes" : "no";
      button.setAttribute("aria-label", `${button.textContent} ${member.name || member.interface}`);
    }
  }

  function makeEntry(entry) {
    return el(
      "li",
      { "data-entry": entry.uniqueid },
      el("span", { class: "position" }),
      el("span", { class: "cid" }),
      el("span", { class: "name" }),
      el("span", { class: "duration" }),
    );
  }

  function updateEntry(item, entry) {
    const channel = channelOf(entry.uniqueid);
    item.querySelector(".position").textContent = `#${entry.position}`;
    item.querySelector(".cid").textContent = channel ? callerId(channel.caller_id_name, channel.caller_id_num) : "";
    item.querySelector(".name").textContent = entry.channel;
    item.querySelector(".duration").dataset.since = entry.joined;
  }

  function drawBridges() {
    const bridges = Object.values(model.bridges)
      .filter((b) => b.channels.length)
      .sort((a, b) => a.created - b.created);
    show("bridges-empty", !bridges.length);
    keyed($("bridges"), bridges, (b) => b.uniqueid, makeBridge, updateBridge);
  }

  function makeBridge(bridge) {
    return el(
      "article",
      { class: "card answered", "data-bridge": bridge.uniqueid },
      el(
        "div",
        { class: "card-head" },
        el("span", { class: "card-title" }),
        el("span", { class: "muted small bridge-kind" }),
        el("span", { class: "duration" }),
      ),
      el("ul", { class: "channels" }),
    );
  }

  function updateBridge(node, bridge) {
    const conference = bridge.technology === "softmix" || bridge.creator === "ConfBridge";
    const holding = bridge.type === "parking" || bridge.technology === "holding_bridge";
    let title = "Bridge";
    if (conference) title = `Conference ${bridge.name || ""}`;
    else if (holding) title = `Holding ${bridge.name || ""}`;
    node.querySelector(".card-title").textContent = title;
    const count = bridge.channels.length;
    node.querySelector(".bridge-kind").textContent = `${bridge.type} · ${bridge.technology} · ${count} ${count === 1 ? "member" : "members"}`;
    node.querySelector(".duration").dataset.since = bridge.created;
    const members = bridge.channels.map(channelOf).filter(Boolean);
    keyed(
      node.querySelector(".channels"),
      members,
      (c) => c.uniqueid,
      () => el("li", {}, el("span", { class: "chan-main cid" }), el("span", { class: "chan-detail" }, el("span", { class: "name" }))),
      (item, c) => {
        item.querySelector(".cid").textContent = callerId(c.caller_id_name, c.caller_id_num);
        item.querySelector(".name").textContent = c.name;
      },
    );
  }

  function deviceLamp(state) {
    switch (state) {
      case "NOT_INUSE":
        return "idle";
      case "INUSE":
      case "BUSY":
        return "busy";
      case "RINGING":
      case "RINGINUSE":
        return "ringing";
      case "ONHOLD":
        return "hold";
      default:
        return "off";
    }
  }

  function hintLamp(status) {
    if (status < 0 || status & 4) return "off";
    if (status & 8) return "ringing";
    if (status & 16) return "hold";
    if (status & 3) return "busy";
    return "idle";
  }

  function lamp(kind, label, detail) {
    return [el("span", { class: `lamp ${kind}` }), el("span", { text: label }), el("span", { class: "muted small", text: detail })];
  }

  function drawLamps() {
    const hints = Object.entries(model.hints).sort(([a], [b]) => a.localeCompare(b));
    show("hints-empty", !hints.length);
    keyed(
      $("hints"),
      hints,
      ([key]) => key,
      () => el("li"),
      (item, [key, hint]) => {
        item.replaceChildren(...lamp(hintLamp(hint.status), key, hint.status_text));
        item.title = hint.hint;
      },
    );
    const devices = Object.values(model.devices).sort((a, b) => a.device.localeCompare(b.device));
    $("devices-count").textContent = `(${devices.length})`;
    keyed(
      $("devices"),
      devices,
      (d) => d.device,
      () => el("li"),
      (item, d) => item.replaceChildren(...lamp(deviceLamp(d.state), d.device, d.state.toLowerCase().replace(/_/g, " "))),
    );
  }

  function drawHealth() {
    const rows = [];
    rows.push(["Daemon", streaming ? "connected" : "unreachable"]);
    if (status) {
      rows.push(["PBX", status.logged_in ? "logged in" : status.connected ? "connected" : "unreachable"]);
      rows.push(["State", status.synced ? "synced" : "not synced"]);
      if (status.last_error) rows.push(["Last error", status.last_error]);
    }
    if (health) {
      rows.push(["AMI version", health.ami_version || "–"]);
      rows.push(["Reconnects", String(health.reconnects)]);
      rows.push(["Events received", String(health.events_received)]);
      rows.push(["Actions sent", String(health.actions_sent)]);
    }
    if (model && model.server && model.server.startup) rows.push(["Asterisk started", model.server.startup]);
    if (model && Object.keys(model.limits || {}).length) {
      for (const [topic, why] of Object.entries(model.limits)) rows.push([`Cannot track ${topic}`, why]);
    }
    rows.push(["Changes seen", String(seq)]);
    const list = $("health");
    list.replaceChildren(...rows.flatMap(([term, value]) => [el("dt", { text: term }), el("dd", { text: value })]));
  }

  function tick() {
    for (const node of document.querySelectorAll("[data-since]")) {
      const value = Number(node.dataset.since);
      if (value) node.textContent = since(value);
    }
  }
  setInterval(tick, 1000);

  // --- actions -------------------------------------------------------------------------

  // Asks for the fields of a form in a modal dialog; resolves with their values, or null.
  // A field with a `key` starts with the value last given for that key in this tab.
  function ask(title, fields) {
    const dialog = $("ask");
    $("ask-title").textContent = title;
    const inputs = fields.map((field) => {
      const input = el("input", {
        name: field.name,
        value: field.value !== undefined ? field.value : store.getItem(FIELD_KEY + field.key) || "",
        required: Boolean(field.required),
        placeholder: field.placeholder || "",
        autocomplete: "off",
      });
      return { field, input };
    });
    $("ask-fields").replaceChildren(...inputs.map(({ field, input }) => el("label", {}, el("span", { text: field.label }), input)));
    return new Promise((resolve) => {
      const done = (ok) => {
        $("ask-form").onsubmit = null;
        $("ask-cancel").onclick = null;
        dialog.onclose = null;
        if (dialog.open) dialog.close();
        if (!ok) return resolve(null);
        const values = {};
        for (const { field, input } of inputs) {
          values[field.name] = input.value.trim();
          if (field.key) store.setItem(FIELD_KEY + field.key, values[field.name]);
        }
        resolve(values);
      };
      $("ask-form").onsubmit = (event) => {
        event.preventDefault();
        done(true);
      };
      $("ask-cancel").onclick = () => done(false);
      dialog.onclose = () => done(false);
      dialog.showModal();
      if (inputs.length) inputs[0].input.focus();
    });
  }

  function hangup(uniqueid) {
    const channel = channelOf(uniqueid);
    if (!channel) return;
    action("Hangup", { Channel: channel.name }, `Hang up ${channel.name}`);
  }

  async function redirect(uniqueid) {
    const channel = channelOf(uniqueid);
    if (!channel) return;
    const values = await ask(`Redirect ${channel.name}`, [
      { name: "exten", label: "Extension", required: true, key: "redirect.exten" },
      { name: "context", label: "Context", required: true, value: channel.context },
    ]);
    if (!values) return;
    action(
      "Redirect",
      { Channel: channel.name, Exten: values.exten, Context: values.context, Priority: "1" },
      `Redirect ${channel.name} to ${values.exten}@${values.context}`,
    );
  }

  async function pause(queue, iface) {
    const member = model.queues[queue] && model.queues[queue].members[iface];
    if (!member) return;
    if (member.paused) {
      action("QueuePause", { Queue: queue, Interface: iface, Paused: "false" }, `Unpause ${member.name || iface}`);
      return;
    }
    const values = await ask(`Pause ${member.name || iface} in ${queue}`, [
      { name: "reason", label: "Reason (optional)", key: "pause.reason", placeholder: "break" },
    ]);
    if (!values) return;
    const headers = { Queue: queue, Interface: iface, Paused: "true" };
    if (values.reason) headers.Reason = values.reason;
    action("QueuePause", headers, `Pause ${member.name || iface}`);
  }

  $("call-button").addEventListener("click", async () => {
    const values = await ask("Call", [
      { name: "channel", label: "From (the phone to ring first)", required: true, key: "call.channel", placeholder: "PJSIP/201" },
      { name: "exten", label: "To extension", required: true, key: "call.exten", placeholder: "1000" },
      { name: "context", label: "Context", required: true, key: "call.context", placeholder: "from-internal" },
    ]);
    if (!values) return;
    action(
      "Originate",
      { Channel: values.channel, Exten: values.exten, Context: values.context, Priority: "1", Async: "true" },
      `Call ${values.exten} from ${values.channel}`,
    );
  });

  // --- go ------------------------------------------------------------------------------

  if (token) show("forget", true);
  start();
})();
