// The HTML report's timeline: draws the embedded run data on a canvas, one lane per worker.
// Zoom with the wheel or the buttons, pan by dragging, hover or click a bar for its details.
// Names are only ever set as textContent: the data is users' text.
(function () {
  "use strict";
  var source = document.getElementById("timeline-data");
  var canvas = document.getElementById("timeline-canvas");
  if (!source || !canvas) return;
  var data = JSON.parse(source.textContent);
  var tip = document.getElementById("timeline-tip");
  var detail = document.getElementById("timeline-detail");
  var ctx = canvas.getContext("2d");

  var LABEL = 96, AXIS = 22, TEST_H = 16, FIX_H = 7, GAP = 5;
  var LANE_H = TEST_H + FIX_H + GAP + 2;
  var COLORS = {
    idle: "#eceff3", setup: "#9ec5e8", call: "#2f6fb0", failed: "#c8372d",
    skipped: "#b9b9b9", fixture: "#e59a2f", fteardown: "#8a5fbf", axis: "#6b7280",
    text: "#1f2933", grid: "#d5dbe3"
  };
  var OUTCOME_COLOR = ["call", "failed", "failed", "skipped", "skipped", "call", "call"];

  var lanes = data.lanes.map(function (lane) {
    return { name: lane.name, start: lane.start, end: lane.end, tests: [], fixtures: [] };
  });
  var T = data.tests, F = data.fixtures, i;
  for (i = 0; i < T.length; i += 6) lanes[T[i]].tests.push(i);
  for (i = 0; i < F.length; i += 5) lanes[F[i]].fixtures.push(i);
  // Fixture phases may nest, so their ends are searched through a running maximum.
  lanes.forEach(function (lane) {
    var high = -Infinity;
    lane.fixEnds = lane.fixtures.map(function (k) { high = Math.max(high, F[k + 1] + F[k + 2]); return high; });
  });
  var span = Math.max(1, data.span);
  var view = { t0: 0, t1: span };
  var state = { drawn: [], ready: false, firstDrawMs: null, pinned: null };

  // The canvas's width, read once per layout (reading it per bar would be slow).
  var cssWidth = 800;
  function width() { return cssWidth; }
  function plotW() { return Math.max(50, cssWidth - LABEL - 8); }
  function x(t) { return LABEL + (t - view.t0) / (view.t1 - view.t0) * plotW(); }
  function tAt(px) { return view.t0 + (px - LABEL) / plotW() * (view.t1 - view.t0); }
  function laneTop(l) { return AXIS + l * LANE_H; }

  function resize() {
    var ratio = window.devicePixelRatio || 1;
    cssWidth = canvas.clientWidth || 800;
    var h = AXIS + lanes.length * LANE_H + 4;
    canvas.style.height = h + "px";
    canvas.width = Math.round(width() * ratio);
    canvas.height = Math.round(h * ratio);
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  }

  function fmt(us) {
    var s = us / 1e6;
    if (us === 0) return "0";
    if (s < 0.001) return (us).toFixed(0) + "µs";
    if (s < 1) return (s * 1000).toFixed(s < 0.01 ? 2 : 1) + "ms";
    if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + "s";
    var m = Math.floor(s / 60);
    return m + "m" + (s - 60 * m).toFixed(0).padStart(2, "0") + "s";
  }

  // First index of `rows` (offsets into `arr`) whose end is after t.
  function firstEnding(rows, arr, t, endOf) {
    var lo = 0, hi = rows.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (endOf(arr, rows[mid]) < t) lo = mid + 1; else hi = mid;
    }
    return lo;
  }
  function testEnd(arr, k) { return arr[k + 1] + arr[k + 2] + arr[k + 3] + arr[k + 4]; }
  function fixEnd(arr, k) { return arr[k + 1] + arr[k + 2]; }
  // First fixture row of a lane that may end after t.
  function firstFixture(lane, t) {
    var lo = 0, hi = lane.fixEnds.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (lane.fixEnds[mid] < t) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  // Bars narrower than a pixel are gathered into runs and drawn once per run.
  function Painter(y, h) { this.y = y; this.h = h; this.x0 = -1; this.x1 = -1; this.color = null; }
  Painter.prototype.add = function (a, b, color) {
    if (b - a >= 1) { this.flush(); ctx.fillStyle = color; ctx.fillRect(a, this.y, b - a, this.h); return; }
    if (this.color === color && a <= this.x1 + 1) { this.x1 = Math.max(this.x1, b); return; }
    this.flush(); this.x0 = a; this.x1 = b; this.color = color;
  };
  Painter.prototype.flush = function () {
    if (this.color === null) return;
    ctx.fillStyle = this.color;
    ctx.fillRect(this.x0, this.y, Math.max(1, this.x1 - this.x0), this.h);
    this.color = null;
  };

  function niceStep(rangeUs, px) {
    var raw = rangeUs / Math.max(1, px / 90);
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = [1, 2, 5, 10].find(function (f) { return f * p >= raw; });
    return m * p;
  }

  function draw() {
    var t0 = performance.now();
    var w = width(), pw = plotW();
    ctx.clearRect(0, 0, w, canvas.height);
    ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    var step = niceStep(view.t1 - view.t0, pw);
    ctx.fillStyle = COLORS.axis; ctx.strokeStyle = COLORS.grid;
    for (var t = Math.ceil(view.t0 / step) * step; t <= view.t1; t += step) {
      var gx = Math.round(x(t)) + 0.5;
      ctx.beginPath(); ctx.moveTo(gx, AXIS - 4); ctx.lineTo(gx, AXIS + lanes.length * LANE_H); ctx.stroke();
      var label = fmt(t);
      if (gx + 3 + ctx.measureText(label).width <= w) ctx.fillText(label, gx + 3, 10);
    }
    state.drawn = [];
    ctx.save();
    lanes.forEach(function (lane, l) {
      var top = laneTop(l);
      ctx.fillStyle = COLORS.text;
      ctx.fillText(lane.name.length > 14 ? lane.name.slice(0, 13) + "…" : lane.name, 4, top + TEST_H / 2);
      ctx.save();
      ctx.beginPath(); ctx.rect(LABEL, 0, pw, canvas.height); ctx.clip();
      var a = Math.max(x(lane.start), LABEL), b = Math.min(x(lane.end), LABEL + pw);
      if (b > a) { ctx.fillStyle = COLORS.idle; ctx.fillRect(a, top, b - a, TEST_H); }
      var count = 0, p = new Painter(top, TEST_H);
      for (var j = firstEnding(lane.tests, T, view.t0, testEnd); j < lane.tests.length; j++) {
        var k = lane.tests[j], s = T[k + 1];
        if (s > view.t1) break;
        var main = COLORS[OUTCOME_COLOR[T[k + 5]]];
        var xs = x(s), xa = x(s + T[k + 2]), xb = x(s + T[k + 2] + T[k + 3]), xe = x(testEnd(T, k));
        if (xe - xs < 1) { p.add(xs, xe, main); }
        else {
          p.add(xs, xa, COLORS.setup); p.add(xa, xb, main); p.add(xb, xe, COLORS.setup);
        }
        count++;
      }
      p.flush();
      var q = new Painter(top + TEST_H + 1, FIX_H);
      for (j = firstFixture(lane, view.t0); j < lane.fixtures.length; j++) {
        k = lane.fixtures[j];
        if (F[k + 1] > view.t1) break;
        q.add(x(F[k + 1]), x(fixEnd(F, k)), F[k + 4] ? COLORS.fteardown : COLORS.fixture);
      }
      q.flush();
      ctx.restore();
      state.drawn.push(count);
    });
    ctx.restore();
    state.lastDrawMs = performance.now() - t0;
    if (state.firstDrawMs === null) state.firstDrawMs = performance.now();
  }

  var pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; draw(); });
  }

  function zoom(factor, around) {
    var range = view.t1 - view.t0;
    var next = Math.min(span * 1.05, Math.max(50, range * factor));
    var c = around === undefined ? (view.t0 + view.t1) / 2 : around;
    var share = (c - view.t0) / range;
    view.t0 = c - share * next; view.t1 = view.t0 + next;
    clamp(); redraw();
  }
  function clamp() {
    var range = view.t1 - view.t0;
    if (view.t0 < 0) { view.t0 = 0; view.t1 = range; }
    if (view.t1 > span && range <= span) { view.t1 = span; view.t0 = span - range; }
  }

  // What is under a point of the canvas: a test or a fixture phase, or null.
  function hit(px, py) {
    var l = Math.floor((py - AXIS) / LANE_H);
    if (l < 0 || l >= lanes.length || px < LABEL) return null;
    var within = py - laneTop(l), t = tAt(px), slack = 3 * (view.t1 - view.t0) / plotW();
    var lane = lanes[l], j, k;
    if (within < TEST_H) {
      j = firstEnding(lane.tests, T, t - slack, testEnd);
      if (j < lane.tests.length) {
        k = lane.tests[j];
        if (T[k + 1] <= t + slack) return { kind: "test", k: k, lane: lane };
      }
    } else if (within < TEST_H + FIX_H + 2) {
      for (j = firstFixture(lane, t - slack); j < lane.fixtures.length; j++) {
        k = lane.fixtures[j];
        if (F[k + 1] > t + slack) break;
        if (fixEnd(F, k) >= t - slack) return { kind: "fixture", k: k, lane: lane };
      }
    }
    return null;
  }

  function describe(h) {
    var k = h.k;
    if (h.kind === "test") {
      return [
        data.ids[k / 6],
        data.outcomes[T[k + 5]] + " on " + h.lane.name + " · from " + fmt(T[k + 1]) + " to " + fmt(testEnd(T, k)),
        "set-up " + fmt(T[k + 2]) + " · call " + fmt(T[k + 3]) + " · tear-down " + fmt(T[k + 4])
      ].join("\n");
    }
    return [
      "fixture " + data.fixtureNames[F[k + 3]],
      (F[k + 4] ? "tear-down" : "set-up") + " on " + h.lane.name + " · from " + fmt(F[k + 1]) + " · took " + fmt(F[k + 2])
    ].join("\n");
  }

  var drag = null;
  canvas.addEventListener("wheel", function (e) {
    e.preventDefault();
    var r = canvas.getBoundingClientRect();
    zoom(e.deltaY > 0 ? 1.25 : 0.8, tAt(e.clientX - r.left));
  }, { passive: false });
  canvas.addEventListener("mousedown", function (e) { drag = { x: e.clientX, t0: view.t0, t1: view.t1, moved: false }; });
  window.addEventListener("mouseup", function () { setTimeout(function () { drag = null; }, 0); });
  canvas.addEventListener("mousemove", function (e) {
    var r = canvas.getBoundingClientRect();
    if (drag && e.buttons) {
      var dt = (e.clientX - drag.x) / plotW() * (drag.t1 - drag.t0);
      if (Math.abs(e.clientX - drag.x) > 2) drag.moved = true;
      view.t0 = drag.t0 - dt; view.t1 = drag.t1 - dt; clamp(); redraw();
      tip.hidden = true;
      return;
    }
    var h = hit(e.clientX - r.left, e.clientY - r.top);
    if (!h) { tip.hidden = true; canvas.style.cursor = "default"; return; }
    canvas.style.cursor = "pointer";
    tip.textContent = describe(h);
    tip.hidden = false;
    var box = canvas.parentElement.getBoundingClientRect();
    tip.style.left = Math.min(e.clientX - box.left + 12, box.width - 320) + "px";
    tip.style.top = (e.clientY - box.top + 14) + "px";
  });
  canvas.addEventListener("mouseleave", function () { tip.hidden = true; });
  canvas.addEventListener("click", function (e) {
    if (drag && drag.moved) return;
    var r = canvas.getBoundingClientRect();
    var h = hit(e.clientX - r.left, e.clientY - r.top);
    detail.textContent = h ? describe(h) : "";
  });
  canvas.addEventListener("dblclick", function () { view.t0 = 0; view.t1 = span; redraw(); });
  document.querySelectorAll("#timeline [data-zoom]").forEach(function (button) {
    button.addEventListener("click", function () {
      var how = button.getAttribute("data-zoom");
      if (how === "reset") { view.t0 = 0; view.t1 = span; redraw(); }
      else zoom(how === "in" ? 0.5 : 2);
    });
  });
  window.addEventListener("resize", function () { resize(); redraw(); });

  // For tests and scripts: the lanes, the bars the last drawing showed per lane, and where on
  // the page (client coordinates) a test's bar is.
  window.feedbackTimeline = {
    state: state,
    view: view,
    lanes: lanes.map(function (lane) { return lane.name; }),
    locate: function (nodeid) {
      var k = data.ids.indexOf(nodeid) * 6;
      if (k < 0) return null;
      var r = canvas.getBoundingClientRect();
      var mid = T[k + 1] + (testEnd(T, k) - T[k + 1]) / 2;
      return { x: r.left + x(mid), y: r.top + laneTop(T[k]) + TEST_H / 2 };
    },
    zoomTo: function (t0, t1) { view.t0 = t0; view.t1 = t1; draw(); }
  };
  resize();
  draw();
  state.ready = true;
})();
