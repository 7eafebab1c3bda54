/* smartpump UI: live fleet updates (Server-Sent Events), small form helpers. Plain JS, no framework. */
"use strict";

function text(el, value) { if (el) { el.textContent = value === null || value === undefined || value === "" ? "—" : String(value); } }

function tileFor(serial) {
  return Array.prototype.find.call(document.querySelectorAll("[data-pump]"), function (el) {
    return el.getAttribute("data-pump") === serial;
  }) || null;
}

var clockOffsetMs = 0;

function alarmItem(a) {
  var li = document.createElement("li");
  li.className = "alarm prio-" + String(a.priority).replace(/[^a-z]/g, "");
  li.setAttribute("data-alarm", a.alarm || "");
  li.setAttribute("data-channel", a.channel || "");
  var icon = document.createElement("span");
  icon.className = "icon";
  icon.setAttribute("aria-hidden", "true");
  icon.textContent = a.icon;
  li.appendChild(icon);
  li.appendChild(document.createTextNode(" " + a.label));
  return li;
}

/* The tile's look as the server computed it (services.tile_look): state, top priority, sort key, offline. */
function restyle(tile, look) {
  Array.prototype.slice.call(tile.classList).forEach(function (c) {
    if (c.indexOf("prio-tile-") === 0 || c.indexOf("st-") === 0) { tile.classList.remove(c); }
  });
  var state = String(look.state).replace(/[^a-z]/g, "");
  var priority = String(look.priority || "").replace(/[^a-z]/g, "");
  tile.classList.add("st-" + state);
  tile.classList.toggle("alarming", priority !== "");
  tile.classList.toggle("offline", Boolean(look.offline));
  if (priority) { tile.classList.add("prio-tile-" + priority); }
  tile.setAttribute("data-state", state);
  tile.setAttribute("data-priority", priority);
  tile.setAttribute("data-sort", look.sort_key);
  var holder = document.getElementById("fleet");
  var wanted = holder ? holder.getAttribute("data-filter-state") : "";
  tile.hidden = Boolean(wanted) && wanted !== state;
}

function resort() {
  var holder = document.querySelector(".tiles.station");
  if (!holder) { return; }
  var tiles = Array.prototype.slice.call(holder.querySelectorAll("[data-pump]"));
  tiles.sort(function (a, b) {
    var ka = a.getAttribute("data-sort") || "", kb = b.getAttribute("data-sort") || "";
    return ka < kb ? -1 : (ka > kb ? 1 : 0);
  });
  tiles.forEach(function (t) { holder.appendChild(t); });
}

function hoursMinutes(minutes) {
  var whole = Math.max(0, Math.floor(minutes));
  var m = whole % 60;
  return Math.floor(whole / 60) + ":" + (m < 10 ? "0" : "") + m;
}

function setTimeLeft(cell, minutes, atMs, shown) {
  if (!cell) { return; }
  if (minutes === null || minutes === undefined || minutes === "") {
    cell.setAttribute("data-min", "");
    text(cell, null);
    return;
  }
  cell.setAttribute("data-min", String(minutes));
  cell.setAttribute("data-at", String(atMs));
  text(cell, shown);
}

function countDown() {
  var now = Date.now() - clockOffsetMs;
  Array.prototype.forEach.call(document.querySelectorAll("[data-pump] td[data-field=time]"), function (cell) {
    var minutes = cell.getAttribute("data-min"), at = Number(cell.getAttribute("data-at"));
    var row = cell.closest("tr"), tile = cell.closest("[data-pump]");
    if (!minutes || !at || tile.classList.contains("offline")) { return; }
    if (row.querySelector("[data-field=state]").textContent !== "running") { return; }
    text(cell, hoursMinutes(Number(minutes) - Math.max(0, now - at) / 60000));
  });
}

/* The summary follows the filters live: tiles shown (a tile moving into or out of the state filter counts at once),
   alarming and offline among the care area's tiles. */
function recount() {
  text(document.getElementById("count-shown"), document.querySelectorAll("[data-pump]:not([hidden])").length);
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
    row.innerHTML = '<td class="ch"></td><td class="drug"><span data-field="drug"></span> <span data-field="dose" class="dose"></span></td>' +
      '<td class="num"><span data-field="rate"></span> <span class="unit">mL/h</span></td>' +
      '<td class="num"><span data-field="remaining"></span> <span class="unit">mL</span></td>' +
      '<td class="num" data-field="time" title="time left (h:mm)"></td><td data-field="state"></td>';
    row.querySelector("td.ch").textContent = p.channel;
    body.appendChild(row);
  }
  /* numbers as the server wrote them for reading (*_text: the tile's rule on first render); never rounded here */
  if ("drug" in p) { text(row.querySelector("[data-field=drug]"), p.drug); }
  if ("dose_text" in p) { row.querySelector("[data-field=dose]").textContent = p.dose_text ? p.dose_text + (p.dose_unit ? " " + p.dose_unit : "") : ""; }
  if ("rate_text" in p) { text(row.querySelector("[data-field=rate]"), p.rate_text); }
  if ("remaining_text" in p) { text(row.querySelector("[data-field=remaining]"), p.remaining_text); }
  if ("time_left" in p) { setTimeLeft(row.querySelector("[data-field=time]"), p.remaining_min, p.at || Date.now() - clockOffsetMs, p.time_left); }
  if ("state" in p) {
    var cell = row.querySelector("[data-field=state]");
    text(cell, p.state);
    cell.className = "state-" + String(p.state).replace(/[^a-z_]/g, "");
  }
  var drugShown = row.querySelector("[data-field=drug]").textContent;
  row.classList.toggle("unused", drugShown === "—" && row.querySelector("[data-field=state]").textContent === "idle");
}

function onView(p) {
  var tile = tileFor(p.pump);
  if (!tile || !p.tile) { return; }
  var list = tile.querySelector("[data-field=alarms]");
  while (list.firstChild) { list.removeChild(list.firstChild); }
  (p.alarms || []).forEach(function (a) { list.appendChild(alarmItem(a)); });
  var presence = String(p.presence || "").replace(/[^a-z]/g, "");
  var conn = tile.querySelector("[data-field=conn]");
  text(conn, presence);
  if (conn) { conn.className = "conn presence-" + presence; }
  if (p.battery_percent !== undefined && p.battery_percent !== null) {
    text(tile.querySelector("[data-field=battery]"), "battery " + p.battery_percent + " %");
  }
  Object.keys(p.channels || {}).forEach(function (cid) {
    onChannel(Object.assign({}, p.channels[cid], { pump: p.pump, channel: cid, at: p.ts ? Date.parse(p.ts) : 0 }));
  });
  restyle(tile, p.tile);
  resort();
  recount();
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
  handle("pump.view", onView);
  /* "open" once the stream's starting views (every pump as the server holds it now) are shown */
  source.onopen = function () { text(state, "live: catching up…"); };
  source.addEventListener("live.current", function () {
    text(state, "live: connected");
    document.body.setAttribute("data-live-state", "open");
  });
  source.onerror = function () {
    text(state, "live: reconnecting…");
    document.body.setAttribute("data-live-state", "error");
    // A refused opening (503 server.busy when the server is full) closes an EventSource for good: open a
    // new one after a few seconds, spread so that many screens do not come back at the same moment.
    if (source.readyState === EventSource.CLOSED) { window.setTimeout(startLive, 2000 + Math.random() * 3000); }
  };
}

function escapeRegex(value) { return value.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); }

function entryValidation() {
  var order = ["hard_min", "soft_min", "soft_max", "hard_max"];
  Array.prototype.forEach.call(document.querySelectorAll("form[data-validate-entry]"), function (form) {
    var amounts = (form.getAttribute("data-amounts") || "").split(" ").filter(Boolean).map(escapeRegex).join("|");
    var times = (form.getAttribute("data-times") || "").split(" ").filter(Boolean).map(escapeRegex).join("|");
    var doseUnit = new RegExp("^(" + amounts + ")(/(kg|m2))?(/(" + times + "))?$", "i");
    var amountUnit = new RegExp("^(" + amounts + ")$");
    var summary = form.querySelector("[data-entry-error]");
    function label(name) { return name.replace("_", " "); }
    function checkRow(row) {
      var problem = "", seen = [], values = {};
      Array.prototype.forEach.call(row.querySelectorAll("input[data-bound]"), function (input) {
        var bound = input.getAttribute("data-bound"), text = input.value.trim();
        input.removeAttribute("aria-invalid");
        if (text === "") { return; }
        var value = Number(text);
        if (!/^[0-9]*\.?[0-9]+$/.test(text) || !isFinite(value)) {
          problem = problem || label(bound) + " must be a non-negative number";
          input.setAttribute("aria-invalid", "true");
          return;
        }
        if (bound === "default" && value <= 0) { problem = problem || "default must be a positive number"; return; }
        values[bound] = value;
        if (order.indexOf(bound) >= 0) {
          seen.forEach(function (prev) {
            if (prev.value > value && !problem) {
              problem = label(prev.name) + " must not exceed " + label(bound);
              input.setAttribute("aria-invalid", "true");
            }
          });
          seen.push({ name: bound, value: value });
        }
      });
      if (!problem && values["default"] !== undefined) {
        if ((values.hard_min !== undefined && values["default"] < values.hard_min) ||
            (values.hard_max !== undefined && values["default"] > values.hard_max)) {
          problem = "default is outside the hard limits";
        }
      }
      var unit = row.querySelector("input[name$='.unit']");
      if (unit && !problem) {
        var text = unit.value.trim().replace(/\s+/g, "");
        var shape = row.getAttribute("data-shape");
        if (text === "" && (seen.length > 0 || values["default"] !== undefined || unit.required)) {
          problem = "enter a unit";
        } else if (text !== "" && !(shape === "custom" ? amountUnit : doseUnit).test(text)) {
          problem = "unknown unit " + JSON.stringify(unit.value) + " (e.g. " + (shape === "custom" ? "mg" : "mcg/kg/min") + ")";
        }
        unit.toggleAttribute("aria-invalid", problem !== "");
      }
      var slot = form.querySelector("[data-errors-for='" + row.getAttribute("data-limits-row") + "'] [data-client-error]");
      if (slot) { slot.textContent = problem; }
      return problem;
    }
    function checkAll() {
      var problems = [];
      Array.prototype.forEach.call(form.querySelectorAll("[data-limits-row]"), function (row) {
        var problem = checkRow(row);
        if (problem) { problems.push(row.querySelector("th").textContent + ": " + problem); }
      });
      summary.textContent = problems.join("; ");
      summary.hidden = problems.length === 0;
      return problems.length === 0;
    }
    form.addEventListener("input", checkAll);
    form.addEventListener("submit", function (ev) { if (!checkAll()) { ev.preventDefault(); } });
  });
}

function maintenanceHelpers() {
  var kind = document.querySelector("select[data-maintenance-kind]");
  if (!kind) { return; }
  var health = kind.form.elements.battery_health_percent;
  function update() {
    var battery = kind.value === "battery_check";
    health.disabled = !battery;
    health.required = battery;
    health.closest("label").hidden = !battery;
  }
  kind.addEventListener("change", update);
  update();
}

function panelHelpers() {
  Array.prototype.forEach.call(document.querySelectorAll("select[data-entries]"), function (select) {
    var form = select.form;
    var list = document.getElementById(select.getAttribute("data-entries"));
    var unit = form.querySelector("[data-unit-label]");
    var conc = form.querySelector("[data-concentration]");
    var pca = form.querySelector("[data-pca-fields]");
    function update(changed) {
      var option = select.options[select.selectedIndex];
      var values = (option && option.getAttribute("data-concentrations") || "").split("|").filter(Boolean);
      list.textContent = "";
      values.forEach(function (v) { var o = document.createElement("option"); o.value = v; list.appendChild(o); });
      if (changed && values.indexOf(conc.value) < 0) { conc.value = ""; }
      if (values.length === 1 && !conc.value) { conc.value = values[0]; }
      if (unit) { text(unit, option ? option.getAttribute("data-unit") : ""); }
      if (pca) { pca.hidden = !(option && option.getAttribute("data-pca") === "yes"); }
      panelMode(form, option, changed);
    }
    select.addEventListener("change", function () { update(true); });
    update(false);
  });
}

function panelMode(form, option, changed) {
  var mode = option ? option.getAttribute("data-mode") || "" : "";
  function show(selector, visible) {
    Array.prototype.forEach.call(form.querySelectorAll(selector), function (el) { el.hidden = !visible; });
  }
  show("[data-drug-fields]", mode !== "basic");
  show("[data-basic-fields]", mode === "basic");
  show("[data-intermittent-fields]", mode === "intermittent");
  show("[data-continuous-fields]", mode === "continuous");
  show("[data-bsa-hint]", option !== null && option.getAttribute("data-per-m2") === "yes");
  var advisory = form.querySelector("[data-advisory-text]");
  if (advisory) {
    var words = option ? option.getAttribute("data-advisory") || "" : "";
    advisory.textContent = words ? "Advisory: " + words : "";
    advisory.hidden = !words;
  }
  var modeText = form.querySelector("[data-mode-text]");
  if (modeText) {
    text(modeText, {basic: "Basic infusion: no drug-library limits; enter a rate.",
      intermittent: "Intermittent: the dose is given over the duration.",
      pca: "PCA: demand dose, lockout and limits below.",
      continuous: "Continuous infusion."}[mode] || "");
  }
  var route = form.querySelector("select[data-route-select]");
  if (route && changed && option && option.getAttribute("data-route")) { route.value = option.getAttribute("data-route"); }
}

function panelFocus() {
  var panel = document.querySelector(".panel[data-focus]");
  if (!panel) { return; }
  var targets = panel.getAttribute("data-focus").split("|");
  for (var i = 0; i < targets.length; i += 1) {
    var el = document.querySelector(targets[i]);
    if (el && !el.closest("[hidden]")) { el.focus(); return; }
  }
}

document.addEventListener("DOMContentLoaded", function () {
  Array.prototype.forEach.call(document.querySelectorAll("select[data-autosubmit]"), function (s) {
    s.addEventListener("change", function () { s.form.submit(); });
  });
  var station = document.querySelector("[data-server-now]");
  if (station) { clockOffsetMs = Date.now() - Number(station.getAttribute("data-server-now")); }
  recount();
  setInterval(countDown, 5000);
  startLive();
  entryValidation();
  maintenanceHelpers();
  panelHelpers();
  panelFocus();
});
