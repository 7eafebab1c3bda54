/* smartpump UI: live fleet updates (Server-Sent Events), small form helpers. Plain JS, no framework. */
"use strict";

function text(el, value) { if (el) { el.textContent = value === null || value === undefined || value === "" ? "—" : String(value); } }

function tileFor(serial) {
  return Array.prototype.find.call(document.querySelectorAll("[data-pump]"), function (el) {
    return el.getAttribute("data-pump") === serial;
  }) || null;
}

function alarmItem(p) {
  var li = document.createElement("li");
  var prio = ["high", "medium", "low"].indexOf(p.priority) >= 0 ? p.priority : "low";
  li.className = "alarm prio-" + prio;
  li.setAttribute("data-alarm", p.alarm || "");
  li.setAttribute("data-channel", p.channel || "");
  li.textContent = prio + " · " + (p.alarm || "alarm") + (p.channel ? " (" + p.channel + ")" : "");
  return li;
}

function onAlarm(p, raised) {
  var tile = tileFor(p.pump || p.serial);
  if (!tile) { return; }
  var list = tile.querySelector("[data-field=alarms]");
  Array.prototype.forEach.call(list.querySelectorAll("li"), function (li) {
    if (li.getAttribute("data-alarm") === (p.alarm || "") && li.getAttribute("data-channel") === (p.channel || "")) { li.remove(); }
  });
  if (raised) {
    var rank = { high: 0, medium: 1, low: 2 };
    var item = alarmItem(p);
    var before = Array.prototype.find.call(list.children, function (li) {
      var other = (li.className.match(/prio-(\w+)/) || [])[1];
      return rank[other] > rank[p.priority];
    });
    list.insertBefore(item, before || null);
  }
  tile.classList.toggle("alarming", list.children.length > 0);
  recount();
}

function recount() {
  text(document.getElementById("count-alarming"), document.querySelectorAll("[data-pump].alarming").length);
  text(document.getElementById("count-offline"), document.querySelectorAll("[data-pump].offline").length);
}

function onChannel(p) {
  var tile = tileFor(p.pump || p.serial);
  if (!tile || !p.channel) { return; }
  var row = tile.querySelector("tr[data-channel='" + String(p.channel).replace(/[^A-Za-z0-9]/g, "") + "']");
  if (!row) {
    var body = tile.querySelector("table.channels tbody");
    var none = body.querySelector("tr.none");
    if (none) { none.remove(); }
    row = document.createElement("tr");
    row.setAttribute("data-channel", p.channel);
    ["channel", "drug", "dose", "rate", "remaining", "time", "state"].forEach(function (f) {
      var td = document.createElement("td");
      if (f !== "channel") { td.setAttribute("data-field", f); } else { td.textContent = p.channel; }
      row.appendChild(td);
    });
    body.appendChild(row);
  }
  if ("drug" in p) { text(row.querySelector("[data-field=drug]"), p.drug); }
  if ("dose" in p) { text(row.querySelector("[data-field=dose]"), p.dose === null ? null : p.dose + (p.dose_unit ? " " + p.dose_unit : "")); }
  if ("rate_ml_per_h" in p) { text(row.querySelector("[data-field=rate]"), p.rate_ml_per_h); }
  var vtbi = p.vtbi_ml, infused = p.infused_ml !== undefined ? p.infused_ml : p.volume_infused_ml;
  if (vtbi !== undefined && vtbi !== null && infused !== undefined) {
    var left = Number(vtbi) - Number(infused);
    text(row.querySelector("[data-field=remaining]"), left.toFixed(1));
    var rate = Number(p.rate_ml_per_h);
    text(row.querySelector("[data-field=time]"), rate > 0 && p.state === "running" ? Math.round(left * 60 / rate) + " min" : null);
  }
  if ("state" in p) {
    var cell = row.querySelector("[data-field=state]");
    text(cell, p.state);
    cell.className = "state-" + String(p.state).replace(/[^a-z_]/g, "");
  }
}

function onPump(p, kind) {
  var tile = tileFor(p.pump || p.serial);
  if (!tile) { return; }
  if (kind === "pump.offline" || kind === "pump.online") {
    var offline = kind === "pump.offline";
    tile.classList.toggle("offline", offline);
    recount();
    text(tile.querySelector("[data-field=conn]"), offline ? "offline" : "online");
  }
  if (p.battery_percent !== undefined && p.battery_percent !== null) {
    text(tile.querySelector("[data-field=battery]"), "battery " + p.battery_percent + " %");
  }
  if (p.channels && typeof p.channels === "object") {
    Object.keys(p.channels).forEach(function (cid) {
      var c = Object.assign({ pump: p.pump || p.serial, channel: cid }, p.channels[cid]);
      onChannel(c);
    });
  }
}

function startLive() {
  var holder = document.querySelector("[data-live]");
  if (!holder || !window.EventSource) { return; }
  var state = document.getElementById("live-state");
  var source = new EventSource(holder.getAttribute("data-live"));
  function handle(kind, fn) {
    source.addEventListener(kind, function (ev) {
      var payload;
      try { payload = JSON.parse(ev.data); } catch (e) { return; }
      fn(payload, kind);
    });
  }
  handle("alarm.raised", function (p) { onAlarm(p, true); });
  handle("alarm.cleared", function (p) { onAlarm(p, false); });
  handle("channel.state", onChannel);
  handle("pump.status", onPump);
  handle("pump.offline", onPump);
  handle("pump.online", onPump);
  source.onopen = function () { text(state, "live: connected"); document.body.setAttribute("data-live-state", "open"); };
  source.onerror = function () { text(state, "live: reconnecting…"); document.body.setAttribute("data-live-state", "error"); };
}

function limitsValidation() {
  Array.prototype.forEach.call(document.querySelectorAll("form[data-validate-limits]"), function (form) {
    var order = ["hard_min", "soft_min", "soft_max", "hard_max"];
    var out = form.querySelector("[data-limits-error]");
    function check() {
      var seen = [], problem = "";
      order.forEach(function (name) {
        var input = form.elements[name];
        if (!input || input.value.trim() === "") { return; }
        var value = Number(input.value);
        if (!isFinite(value) || value < 0) { problem = name.replace("_", " ") + " must be a non-negative number"; return; }
        seen.forEach(function (prev) {
          if (prev.value > value && !problem) { problem = prev.name.replace("_", " ") + " must not exceed " + name.replace("_", " "); }
        });
        seen.push({ name: name, value: value });
      });
      out.textContent = problem;
      out.hidden = problem === "";
      return problem === "";
    }
    form.addEventListener("input", check);
    form.addEventListener("submit", function (ev) { if (!check()) { ev.preventDefault(); } });
  });
}

function panelHelpers() {
  var select = document.querySelector("select[data-entries]");
  if (!select) { return; }
  var list = document.getElementById("conc-list");
  var unit = document.querySelector("[data-unit-label]");
  var conc = select.form.elements.concentration;
  function update() {
    var option = select.options[select.selectedIndex];
    var values = (option && option.getAttribute("data-concentrations") || "").split("|").filter(Boolean);
    list.textContent = "";
    values.forEach(function (v) { var o = document.createElement("option"); o.value = v; list.appendChild(o); });
    if (values.length === 1 && !conc.value) { conc.value = values[0]; }
    text(unit, option ? option.getAttribute("data-unit") : "");
  }
  select.addEventListener("change", update);
  update();
}

document.addEventListener("DOMContentLoaded", function () {
  Array.prototype.forEach.call(document.querySelectorAll("select[data-autosubmit]"), function (s) {
    s.addEventListener("change", function () { s.form.submit(); });
  });
  startLive();
  limitsValidation();
  panelHelpers();
});
