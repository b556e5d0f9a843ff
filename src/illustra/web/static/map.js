// The Map view: every point of /api/map drawn on a canvas, with pan, zoom, hover titles,
// thumbnails when zoomed in, region labels and the current search highlighted. No library:
// points are counted into a pixel buffer (a density image) each frame, which draws a million
// points in tens of milliseconds without WebGL.
(function () {
  "use strict";

  var frame = document.querySelector("[data-map]");
  if (!frame) return;
  var canvas = frame.querySelector("canvas");
  var ctx = canvas.getContext("2d");
  var tip = frame.querySelector("[data-map-tip]");
  var status = frame.querySelector("[data-map-status]");
  var started = performance.now();

  var NONE = 65535;
  var SCALE = 65534;
  var THUMB_MAX = 150; // thumbnails drawn at once
  var THUMB_SIDE = 56; // CSS pixels
  var LABEL_CELL_PX = 170; // a grid level is labelled once its cells are this wide on screen
  var PAPER = [247, 244, 238];
  var INK = [122, 46, 42];

  var meta = null;
  var xs = null; // Uint16Array per row
  var ys = null;
  var loaded = 0; // chunks in
  var marked = null; // rows highlighted (Int32Array)
  var markedRow = null; // Uint8Array per row: 1 where highlighted (many marks are drawn as pixels)
  var MANY_MARKS = 2000; // above this many, marks are coloured pixels rather than circles
  var grid = null; // spatial index for picking: {size, start, rows}
  var items = new Map(); // row -> item json
  var thumbs = new Map(); // row -> Image
  var pending = new Set();
  var view = { cx: 0.5, cy: 0.5, scale: 1 }; // map unit at the centre, CSS pixels per map unit
  var buffer = null; // ImageData
  var counts = null; // Uint32Array per device pixel
  var lut = null;
  var dimLut = null; // a paler ramp for the points a highlight leaves out
  var MARK_SOLID = (255 << 24) | (179 << 16) | (111 << 8) | 27; // #1b6fb3 as little-endian RGBA
  var markedPix = null; // Uint8Array per device pixel: a highlighted point landed here
  var dpr = Math.min(window.devicePixelRatio || 1, 2);
  var drawQueued = false;
  var hoverRow = -1;

  function cssSize() {
    var r = canvas.getBoundingClientRect();
    return { w: Math.max(1, Math.round(r.width)), h: Math.max(1, Math.round(r.height)) };
  }

  function resize() {
    var s = cssSize();
    canvas.width = Math.round(s.w * dpr);
    canvas.height = Math.round(s.h * dpr);
    buffer = ctx.createImageData(canvas.width, canvas.height);
    counts = new Uint32Array(canvas.width * canvas.height);
    markedPix = new Uint8Array(canvas.width * canvas.height);
    queueDraw();
  }

  function resetView() {
    var s = cssSize();
    view.cx = 0.5;
    view.cy = 0.5;
    view.scale = Math.min(s.w, s.h) * 0.96;
    queueDraw();
  }

  function ramp(ink) {
    // Counts per pixel -> ink over paper; log-like so dense regions do not saturate at once.
    var out = new Uint32Array(256);
    for (var c = 0; c < 256; c++) {
      var t = c === 0 ? 0 : Math.min(1, 0.35 + Math.log(c) / Math.log(64) * 0.65);
      var r = Math.round(PAPER[0] + (ink[0] - PAPER[0]) * t);
      var g = Math.round(PAPER[1] + (ink[1] - PAPER[1]) * t);
      var b = Math.round(PAPER[2] + (ink[2] - PAPER[2]) * t);
      out[c] = (255 << 24) | (b << 16) | (g << 8) | r; // little-endian RGBA
    }
    return out;
  }

  function buildLut() {
    lut = ramp(INK);
    dimLut = ramp([200, 170, 165]);
  }

  function toScreen(ux, uy) {
    var s = cssSize();
    return [(ux - view.cx) * view.scale + s.w / 2, (uy - view.cy) * view.scale + s.h / 2];
  }

  function toMap(px, py) {
    var s = cssSize();
    return [(px - s.w / 2) / view.scale + view.cx, (py - s.h / 2) / view.scale + view.cy];
  }

  function queueDraw() {
    if (drawQueued) return;
    drawQueued = true;
    window.requestAnimationFrame(function () { drawQueued = false; draw(); });
  }

  function draw() {
    if (!xs || !buffer) return;
    var W = canvas.width, H = canvas.height;
    counts.fill(0);
    var pixelMarks = markedRow && marked.length > MANY_MARKS;
    if (pixelMarks) markedPix.fill(0);
    var k = view.scale * dpr / SCALE;
    var ox = W / 2 - view.cx * view.scale * dpr;
    var oy = H / 2 - view.cy * view.scale * dpr;
    var n = xs.length, visible = 0, i, px, py;
    for (i = 0; i < n; i++) {
      var x = xs[i];
      if (x === NONE) continue;
      px = (x * k + ox) | 0;
      py = (ys[i] * k + oy) | 0;
      if (px < 0 || py < 0 || px >= W || py >= H) continue;
      counts[py * W + px]++;
      if (pixelMarks && markedRow[i]) markedPix[py * W + px] = 1;
      visible++;
    }
    var out = new Uint32Array(buffer.data.buffer);
    // Points grow with zoom: 1 device pixel far out, up to 3 when few are on screen. With a
    // highlight, the other points are drawn paler and the highlighted ones solid, a size larger.
    var spread = visible < 50000 ? (visible < 5000 ? 2 : 1) : 0;
    var base = marked && marked.length ? dimLut : lut;
    for (i = 0; i < out.length; i++) out[i] = lut[0];
    for (var pass = 0; pass < (pixelMarks ? 2 : 1); pass++) {
      for (i = 0; i < counts.length; i++) {
        var c = counts[i];
        if (!c) continue;
        var hit = pixelMarks && markedPix[i] === 1;
        if (pixelMarks && hit !== (pass === 1)) continue; // highlighted pixels last, on top
        var col = hit ? MARK_SOLID : base[c > 255 ? 255 : c];
        var sp = hit ? Math.max(1, spread) : spread;
        if (!sp) { out[i] = col; continue; }
        var cx = i % W, cy = (i / W) | 0;
        for (var dy = -sp; dy <= sp; dy++) {
          var yy = cy + dy;
          if (yy < 0 || yy >= H) continue;
          for (var dx = -sp; dx <= sp; dx++) {
            var xx = cx + dx;
            if (xx >= 0 && xx < W) out[yy * W + xx] = col;
          }
        }
      }
    }
    ctx.putImageData(buffer, 0, 0);
    ctx.save();
    ctx.scale(dpr, dpr);
    drawMarked();
    drawThumbs(visible);
    drawLabels();
    drawHover();
    ctx.restore();
    if (!frame.dataset.painted) {
      frame.dataset.painted = "1";
      window.illustraMapFirstPaint = performance.now() - started;
      window.illustraMapPaintedAt = performance.now(); // since navigation started
    }
    frame.dataset.visible = String(visible);
  }

  function drawMarked() {
    if (!marked || !marked.length || marked.length > MANY_MARKS) return;
    ctx.fillStyle = "#1b6fb3";
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = 1;
    var s = cssSize();
    var r = 3.5;
    for (var i = 0; i < marked.length; i++) {
      var row = marked[i];
      if (xs[row] === NONE) continue;
      var p = toScreen(xs[row] / SCALE, ys[row] / SCALE);
      if (p[0] < -r || p[1] < -r || p[0] > s.w + r || p[1] > s.h + r) continue;
      ctx.beginPath();
      ctx.arc(p[0], p[1], r, 0, 6.2832);
      ctx.fill();
      if (r > 2) ctx.stroke();
    }
  }

  function visibleRows(limit) {
    // Rows on screen, nearest the centre first, at most ``limit``; null when too many.
    if (!grid) return null;
    var s = cssSize();
    var a = toMap(0, 0), b = toMap(s.w, s.h);
    var G = grid.size;
    var gx0 = Math.max(0, Math.floor(a[0] * G)), gy0 = Math.max(0, Math.floor(a[1] * G));
    var gx1 = Math.min(G - 1, Math.floor(b[0] * G)), gy1 = Math.min(G - 1, Math.floor(b[1] * G));
    var found = [];
    for (var gy = gy0; gy <= gy1; gy++) {
      for (var gx = gx0; gx <= gx1; gx++) {
        var c = gy * G + gx;
        for (var j = grid.start[c]; j < grid.start[c + 1]; j++) {
          var row = grid.rows[j];
          var p = toScreen(xs[row] / SCALE, ys[row] / SCALE);
          if (p[0] >= 0 && p[1] >= 0 && p[0] <= s.w && p[1] <= s.h) {
            found.push(row);
            if (found.length > limit * 4) return null;
          }
        }
      }
    }
    var mid = [view.cx, view.cy];
    found.sort(function (r1, r2) {
      var d1 = Math.pow(xs[r1] / SCALE - mid[0], 2) + Math.pow(ys[r1] / SCALE - mid[1], 2);
      var d2 = Math.pow(xs[r2] / SCALE - mid[0], 2) + Math.pow(ys[r2] / SCALE - mid[1], 2);
      return d1 - d2;
    });
    return found.slice(0, limit);
  }

  function drawThumbs(visible) {
    frame.dataset.thumbs = "0";
    if (visible > THUMB_MAX * 4) return;
    var rows = visibleRows(THUMB_MAX);
    if (!rows) return;
    want(rows);
    var drawn = 0;
    ctx.fillStyle = "#ffffff";
    for (var i = rows.length - 1; i >= 0; i--) {
      var row = rows[i];
      var im = thumbs.get(row);
      if (!im || !im.complete || !im.naturalWidth) continue;
      var p = toScreen(xs[row] / SCALE, ys[row] / SCALE);
      var f = Math.min(THUMB_SIDE / im.naturalWidth, THUMB_SIDE / im.naturalHeight);
      var w = im.naturalWidth * f, h = im.naturalHeight * f;
      ctx.fillRect(p[0] - w / 2 - 2, p[1] - h / 2 - 2, w + 4, h + 4);
      ctx.drawImage(im, p[0] - w / 2, p[1] - h / 2, w, h);
      drawn++;
    }
    frame.dataset.thumbs = String(drawn);
  }

  function drawLabels() {
    if (!meta || !meta.labels || !meta.labels.length) return;
    var level = 0;
    [2, 4, 8, 16, 32].forEach(function (g) { if (view.scale / g >= LABEL_CELL_PX) level = g; });
    if (!level) level = 2;
    var s = cssSize();
    ctx.font = "600 13px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.lineJoin = "round";
    meta.labels.forEach(function (lab) {
      if (lab.level !== level) return;
      var p = toScreen(lab.x, lab.y);
      if (p[0] < -80 || p[1] < -20 || p[0] > s.w + 80 || p[1] > s.h + 20) return;
      var text = lab.words.join(" · ");
      ctx.lineWidth = 4;
      ctx.strokeStyle = "rgba(255,255,255,0.92)";
      ctx.strokeText(text, p[0], p[1]);
      ctx.fillStyle = "#1f1d1a";
      ctx.fillText(text, p[0], p[1]);
    });
  }

  function drawHover() {
    if (hoverRow < 0) return;
    var p = toScreen(xs[hoverRow] / SCALE, ys[hoverRow] / SCALE);
    ctx.strokeStyle = "#1f1d1a";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(p[0], p[1], 6, 0, 6.2832);
    ctx.stroke();
  }

  // -- items: titles, links and thumbnails, fetched in batches -------------------------------
  function want(rows) {
    var missing = rows.filter(function (r) { return !items.has(r) && !pending.has(r); });
    rows.forEach(function (r) {
      var it = items.get(r);
      if (it && it.has_image && !thumbs.has(r)) {
        var im = new Image();
        im.decoding = "async";
        im.onload = queueDraw;
        im.src = it.thumbnail_url;
        thumbs.set(r, im);
      }
    });
    if (!missing.length) return Promise.resolve();
    missing = missing.slice(0, 200);
    missing.forEach(function (r) { pending.add(r); });
    return fetch(meta.items_url + "?rows=" + missing.join(","))
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (body) {
        body.items.forEach(function (it) { items.set(it.row, it); });
        missing.forEach(function (r) { pending.delete(r); });
        queueDraw();
      })
      .catch(function () { missing.forEach(function (r) { pending.delete(r); }); });
  }

  // -- picking ----------------------------------------------------------------------------
  function buildGrid() {
    var G = 256, n = xs.length, cells = new Uint32Array(G * G + 1), i;
    var cellOf = new Int32Array(n);
    for (i = 0; i < n; i++) {
      if (xs[i] === NONE) { cellOf[i] = -1; continue; }
      var c = Math.min(G - 1, (xs[i] * G / (SCALE + 1)) | 0) + G * Math.min(G - 1, (ys[i] * G / (SCALE + 1)) | 0);
      cellOf[i] = c;
      cells[c + 1]++;
    }
    for (i = 0; i < G * G; i++) cells[i + 1] += cells[i];
    var fill = cells.slice(0, G * G), rows = new Int32Array(cells[G * G]);
    for (i = 0; i < n; i++) if (cellOf[i] >= 0) rows[fill[cellOf[i]]++] = i;
    grid = { size: G, start: cells, rows: rows };
  }

  function nearest(px, py, radius) {
    if (!grid) return -1;
    var m = toMap(px, py), G = grid.size;
    var reach = Math.ceil(radius / view.scale * G) + 1;
    var gx = Math.floor(m[0] * G), gy = Math.floor(m[1] * G);
    var best = -1, bestD = radius * radius;
    for (var y = Math.max(0, gy - reach); y <= Math.min(G - 1, gy + reach); y++) {
      for (var x = Math.max(0, gx - reach); x <= Math.min(G - 1, gx + reach); x++) {
        var c = y * G + x;
        for (var j = grid.start[c]; j < grid.start[c + 1]; j++) {
          var row = grid.rows[j];
          var p = toScreen(xs[row] / SCALE, ys[row] / SCALE);
          var d = (p[0] - px) * (p[0] - px) + (p[1] - py) * (p[1] - py);
          if (d <= bestD) { bestD = d; best = row; }
        }
      }
    }
    return best;
  }

  function describe(row, px, py) {
    hoverRow = row;
    queueDraw();
    if (row < 0) { tip.textContent = ""; tip.hidden = true; return; }
    var show = function () {
      var it = items.get(row);
      if (!it || hoverRow !== row) return;
      tip.textContent = (it.title || "Untitled") + (it.year ? " (" + it.year + ")" : "");
      tip.hidden = false;
      var s = cssSize();
      tip.style.left = Math.min(Math.max(0, px + 12), s.w - 220) + "px";
      tip.style.top = Math.max(0, py - 36) + "px";
    };
    if (items.has(row)) show(); else want([row]).then(show);
  }

  function open(row) {
    if (row < 0) return;
    var go = function () { var it = items.get(row); if (it) window.location.href = it.page_url; };
    if (items.has(row)) go(); else want([row]).then(go);
  }

  // -- interaction ------------------------------------------------------------------------
  function zoomAt(factor, px, py) {
    var before = toMap(px, py);
    var s = cssSize();
    view.scale = Math.min(Math.max(view.scale * factor, Math.min(s.w, s.h) * 0.25), 4e6);
    var after = toMap(px, py);
    view.cx += before[0] - after[0];
    view.cy += before[1] - after[1];
    queueDraw();
  }

  var drag = null;
  canvas.addEventListener("pointerdown", function (e) {
    drag = { x: e.clientX, y: e.clientY, cx: view.cx, cy: view.cy, moved: false };
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointermove", function (e) {
    var r = canvas.getBoundingClientRect();
    var px = e.clientX - r.left, py = e.clientY - r.top;
    if (drag) {
      var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      view.cx = drag.cx - dx / view.scale;
      view.cy = drag.cy - dy / view.scale;
      queueDraw();
      return;
    }
    describe(nearest(px, py, 8), px, py);
  });
  canvas.addEventListener("pointerup", function (e) {
    var r = canvas.getBoundingClientRect();
    var wasDrag = drag && drag.moved;
    drag = null;
    if (!wasDrag) open(nearest(e.clientX - r.left, e.clientY - r.top, 8));
  });
  canvas.addEventListener("pointerleave", function () { if (!drag) describe(-1, 0, 0); });
  canvas.addEventListener("wheel", function (e) {
    e.preventDefault();
    var r = canvas.getBoundingClientRect();
    zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  canvas.addEventListener("keydown", function (e) {
    var s = cssSize(), step = 60 / view.scale;
    var keys = {
      ArrowLeft: function () { view.cx -= step; }, ArrowRight: function () { view.cx += step; },
      ArrowUp: function () { view.cy -= step; }, ArrowDown: function () { view.cy += step; },
      "+": function () { zoomAt(1.5, s.w / 2, s.h / 2); }, "=": function () { zoomAt(1.5, s.w / 2, s.h / 2); },
      "-": function () { zoomAt(1 / 1.5, s.w / 2, s.h / 2); },
      Enter: function () { open(nearest(s.w / 2, s.h / 2, 40)); }
    };
    if (!keys[e.key]) return;
    e.preventDefault();
    keys[e.key]();
    queueDraw();
  });
  frame.querySelectorAll("[data-zoom]").forEach(function (b) {
    b.addEventListener("click", function () {
      var s = cssSize(), how = b.getAttribute("data-zoom");
      if (how === "reset") resetView(); else zoomAt(how === "in" ? 2 : 0.5, s.w / 2, s.h / 2);
    });
  });
  window.addEventListener("resize", function () { resize(); });

  // -- loading ----------------------------------------------------------------------------
  function loadChunk(ch) {
    return fetch(ch.url)
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.arrayBuffer(); })
      .then(function (buf) {
        var pts = new Uint16Array(buf);
        for (var i = 0; i < ch.count; i++) {
          xs[ch.start + i] = pts[2 * i];
          ys[ch.start + i] = pts[2 * i + 1];
        }
        loaded++;
        status.textContent = loaded < meta.chunks.length
          ? "Loading the map… " + Math.round(100 * loaded / meta.chunks.length) + " %"
          : meta.placed.toLocaleString("en") + " pictures";
        queueDraw();
      });
  }

  function loadHighlight() {
    var url = frame.getAttribute("data-highlight");
    if (!url) return Promise.resolve();
    return fetch(url)
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.arrayBuffer(); })
      .then(function (buf) {
        var bits = new Uint8Array(buf), rows = [];
        for (var b = 0; b < bits.length; b++) {
          if (!bits[b]) continue;
          for (var j = 0; j < 8; j++) if (bits[b] & (1 << j)) rows.push(b * 8 + j);
        }
        marked = Int32Array.from(rows);
        markedRow = new Uint8Array(xs.length);
        for (var k = 0; k < rows.length; k++) if (rows[k] < markedRow.length) markedRow[rows[k]] = 1;
        frame.dataset.marked = String(rows.length);
        var note = document.querySelector("[data-map-matches]");
        if (note) note.textContent = "Highlighted: " + rows.length.toLocaleString("en") + " results of this search.";
        queueDraw();
      })
      .catch(function () { frame.dataset.marked = "error"; });
  }

  // Where a point is drawn (CSS pixels in the canvas), for tests and tools; null before it loads.
  window.illustraMap = {
    screenOf: function (row) {
      if (!xs || row < 0 || row >= xs.length || xs[row] === NONE) return null;
      return toScreen(xs[row] / SCALE, ys[row] / SCALE);
    },
    view: view
  };

  buildLut();
  resize();
  resetView();
  fetch(frame.getAttribute("data-api"))
    .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
    .then(function (body) {
      meta = body;
      xs = new Uint16Array(meta.items).fill(NONE);
      ys = new Uint16Array(meta.items).fill(NONE);
      var all = meta.chunks.map(loadChunk);
      all.push(loadHighlight());
      return Promise.all(all);
    })
    .then(function () {
      buildGrid();
      frame.dataset.loaded = "1";
      window.illustraMapLoaded = performance.now() - started;
      window.illustraMapLoadedAt = performance.now();
      queueDraw();
    })
    .catch(function (err) {
      status.textContent = "The map could not be loaded (" + err.message + ").";
      frame.dataset.loaded = "error";
    });
})();
