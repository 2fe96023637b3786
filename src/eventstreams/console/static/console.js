// The console's own script: the debugger's live feed (server-sent events) and the overview's charts (uPlot).
"use strict";

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;  // textContent: remote text is never parsed as HTML
  return e;
}

function startDebugger() {
  const events = document.getElementById("events");
  if (!events) return;
  const attempts = document.getElementById("attempts");
  const status = document.getElementById("live-status");
  const prefix = events.dataset.prefix;
  const source = new EventSource(events.dataset.stream);
  const keep = 200;
  // Each stream ends after a few seconds and the browser resumes it (Last-Event-ID): say "disconnected"
  // only when it has not come back soon.
  let lost = null;
  source.onopen = () => {
    clearTimeout(lost);
    status.textContent = "Live: new events appear as they arrive.";
  };
  source.onerror = () => {
    clearTimeout(lost);
    lost = setTimeout(() => { status.textContent = "Disconnected: retrying…"; }, 3000);
  };
  source.addEventListener("event", (m) => {
    const e = JSON.parse(m.data);
    const li = el("li", {"class": "event", "data-id": e.id});
    const link = el("a", {href: prefix + "/events/" + encodeURIComponent(e.id)}, e.type);
    li.append(link, " ", el("code", {}, e.id), " ", el("small", {}, e.received));
    const d = el("details");
    d.append(el("summary", {}, "Payload"), el("pre", {"class": "json"}, JSON.stringify(e.payload, null, 2)));
    li.append(d);
    events.prepend(li);
    while (events.children.length > keep) events.lastChild.remove();
  });
  source.addEventListener("attempt", (m) => {
    const a = JSON.parse(m.data);
    const li = el("li", {"class": "attempt outcome-" + a.outcome, "data-outcome": a.outcome});
    li.append(el("strong", {}, a.outcome), " ", el("small", {}, a.at), " sink ");
    li.append(el("a", {href: prefix + "/sinks/" + a.sink_sid}, a.sink_sid));
    const info = [];
    if (a.code) info.push("error " + a.code);
    if (a.http_status) info.push("HTTP " + a.http_status);
    if (a.detail) info.push(a.detail);
    if (info.length) li.append(" · ", el("span", {"class": "detail"}, info.join(" · ")));
    const ids = el("div", {"class": "ids"});
    for (const id of a.events.slice(0, 10)) {
      ids.append(el("a", {href: prefix + "/events/" + encodeURIComponent(id)}, id), " ");
    }
    li.append(ids);
    attempts.prepend(li);
    while (attempts.children.length > keep) attempts.lastChild.remove();
  });
  window.addEventListener("pagehide", () => source.close());
}

function formatAge(s) {
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min";
  return Math.floor(s / 3600) + " h";
}

async function drawCharts() {
  const box = document.getElementById("charts");
  if (!box) return;
  const res = await fetch(box.dataset.src, {headers: {accept: "application/json"}});
  if (!res.ok) return;
  const data = await res.json();
  for (const holder of box.querySelectorAll(".chart")) {
    holder.replaceChildren();
    const width = Math.max(260, holder.clientWidth || 600);
    let series, values;
    if (holder.dataset.series === "in") {
      series = [{}, {label: "events in", stroke: "#2563eb", width: 2}];
      values = [data.minutes, data.events_in];
    } else {
      const s = data.sinks[holder.dataset.sink] || {delivered: data.minutes.map(() => 0), failed: data.minutes.map(() => 0)};
      series = [{}, {label: "delivered", stroke: "#15803d", width: 2}, {label: "failed", stroke: "#b91c1c", width: 2}];
      values = [data.minutes, s.delivered, s.failed];
    }
    new uPlot({width: width, height: 160, series: series, axes: [{}, {size: 40}]}, values, holder);
  }
  const body = document.querySelector("#backlog tbody");
  body.replaceChildren();
  if (!data.backlog.length) {
    const tr = el("tr"); tr.append(el("td", {colspan: "3"}, "Nothing pending.")); body.append(tr);
  }
  for (const b of data.backlog) {
    const tr = el("tr");
    tr.append(el("td", {}, b.sink_sid), el("td", {}, String(b.pending)), el("td", {}, formatAge(b.oldest_age_s)));
    body.append(tr);
  }
}

// The subscription form's event-type picker: typing narrows the list (checked types stay visible).
function startPicker() {
  const filter = document.getElementById("type-filter");
  if (!filter) return;
  filter.addEventListener("input", () => {
    const text = filter.value.trim().toLowerCase();
    for (const group of document.querySelectorAll("#picker fieldset")) {
      let shown = 0;
      for (const li of group.querySelectorAll("li")) {
        const keep = !text || li.dataset.type.toLowerCase().includes(text) || li.querySelector("input:checked");
        li.hidden = !keep;
        if (keep) shown += 1;
      }
      group.hidden = shown === 0;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  startDebugger();
  startPicker();
  if (document.getElementById("charts")) {
    drawCharts();
    setInterval(drawCharts, 15000);
  }
});
