// Small enhancements; every page works without them.
(function () {
  "use strict";

  function setBusy(form) {
    var results = document.getElementById("results");
    if (results) results.setAttribute("aria-busy", "true");
    form.querySelectorAll("button[type=submit][data-busy-label]").forEach(function (b) {
      b.dataset.label = b.textContent;
      b.textContent = b.dataset.busyLabel;
    });
  }

  // Restore buttons when the page comes back from the back/forward cache.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("button[data-label]").forEach(function (b) { b.textContent = b.dataset.label; });
    var results = document.getElementById("results");
    if (results) results.setAttribute("aria-busy", "false");
  });

  // Leave empty fields out of the URL so shared links stay short.
  var searchForm = document.getElementById("search-form");
  if (searchForm) {
    searchForm.addEventListener("submit", function () {
      var emptied = [];
      Array.prototype.forEach.call(searchForm.elements, function (el) {
        if (el.name && !el.disabled && (el.type !== "radio" || el.checked) && el.value === "") {
          el.disabled = true;
          emptied.push(el);
        }
      });
      setBusy(searchForm);
      // The form's data is taken synchronously; re-enable so the form works if the user comes back.
      setTimeout(function () { emptied.forEach(function (el) { el.disabled = false; }); }, 0);
    });
  }

  // Drag and drop onto the upload box; choosing or dropping a file starts the search.
  var uploadForm = document.getElementById("upload-form");
  var zone = document.querySelector("[data-dropzone]");
  var fileInput = document.getElementById("image");
  if (uploadForm && zone && fileInput) {
    uploadForm.addEventListener("submit", function (e) {
      var url = document.getElementById("image-url");
      if (!fileInput.files.length && !(url && url.value)) { e.preventDefault(); fileInput.focus(); return; }
      setBusy(uploadForm);
    });
    fileInput.addEventListener("change", function () {
      if (fileInput.files.length) uploadForm.requestSubmit();
    });
    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (e) { e.preventDefault(); zone.classList.add("dragover"); });
    });
    ["dragleave", "drop"].forEach(function (type) {
      zone.addEventListener(type, function () { zone.classList.remove("dragover"); });
    });
    zone.addEventListener("drop", function (e) {
      e.preventDefault();
      if (!e.dataTransfer || !e.dataTransfer.files.length) return;
      fileInput.files = e.dataTransfer.files;
      uploadForm.requestSubmit();
    });
  }

  // "Load more" appends the next page in place (the link itself works without JS).
  document.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest("a[data-load-more]");
    if (!link || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    var grid = document.querySelector("[data-results]");
    var nav = link.closest("[data-more]");
    link.setAttribute("aria-busy", "true");
    link.textContent = "Loading…";
    var sep = link.href.indexOf("?") >= 0 ? "&" : "?";
    fetch(link.href + sep + "partial=1", { headers: { "Accept": "text/html" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var items = doc.querySelectorAll("[data-results] > li");
        var first = null;
        items.forEach(function (li) {
          var node = document.importNode(li, true);
          grid.appendChild(node);
          if (!first) first = node;
        });
        var next = doc.querySelector("[data-more]");
        if (next) nav.replaceWith(document.importNode(next, true)); else nav.remove();
        var summary = document.querySelector(".summary p");
        if (summary && items.length) summary.textContent = "Showing 1–" + grid.children.length;
        if (first) { var a = first.querySelector(".card-title a"); if (a) a.focus(); }
      })
      .catch(function () { window.location.href = link.href; });
  });
})();

// Examples, facets and "my library" on the search page. Marks and the library live in this
// browser (localStorage); nothing here is needed to search, and without it the marks stay hidden.
(function () {
  "use strict";

  var script = document.currentScript;
  var root = script ? script.src.replace(/\/static\/app\.js(\?.*)?$/, "").replace(location.origin, "") : "";
  var KEY = "illustra:" + root + ":";
  var MAX_LINK = 6000; // the longest definition a link may carry (search/limits.py)

  function load(name, fallback) {
    try { var v = JSON.parse(localStorage.getItem(KEY + name)); return v || fallback; } catch (e) { return fallback; }
  }
  function save(name, value) {
    try { localStorage.setItem(KEY + name, JSON.stringify(value)); } catch (e) { /* private mode: kept for this page */ }
  }
  var tray = load("tray", { positive: [], negative: [] });
  if (!Array.isArray(tray.positive)) tray.positive = [];
  if (!Array.isArray(tray.negative)) tray.negative = [];
  var library = load("library", []);
  if (!Array.isArray(library)) library = [];

  function indexOf(list, id) {
    for (var i = 0; i < list.length; i++) if (list[i].id === id) return i;
    return -1;
  }
  function entry(el) { return { id: el.dataset.id, title: el.dataset.title || el.dataset.id, thumb: el.dataset.thumb || "" }; }

  // The definition as the server reads it: "0." and URL-safe base64 of the JSON {"p": [...], "n": [...]}.
  function encodeDefinition(pos, neg) {
    var bytes = new TextEncoder().encode(JSON.stringify({ p: pos, n: neg }));
    var bin = "";
    bytes.forEach(function (b) { bin += String.fromCharCode(b); });
    return "0." + btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function ids(list) { return list.map(function (e) { return e.id; }); }

  // -- marks on result cards ---------------------------------------------------------------
  function syncMarks() {
    document.querySelectorAll("[data-marks]").forEach(function (el) {
      el.hidden = false;
      var id = el.dataset.id;
      el.querySelectorAll("[data-mark]").forEach(function (b) {
        b.setAttribute("aria-pressed", indexOf(tray[b.dataset.mark], id) >= 0 ? "true" : "false");
      });
      var keep = el.querySelector("[data-keep]");
      if (keep) keep.setAttribute("aria-pressed", indexOf(library, id) >= 0 ? "true" : "false");
    });
  }

  var trayEl = document.querySelector("[data-tray]");
  var statusEl = document.querySelector("[data-tray-status]");
  function say(el, text) { if (el) el.textContent = text; }

  function renderTray() {
    if (!trayEl) return;
    var any = tray.positive.length + tray.negative.length > 0;
    trayEl.hidden = !any;
    ["positive", "negative"].forEach(function (side) {
      var list = trayEl.querySelector('[data-tray-list="' + side + '"]');
      var count = trayEl.querySelector('[data-tray-count="' + side + '"]');
      if (count) count.textContent = String(tray[side].length);
      if (!list) return;
      list.textContent = "";
      tray[side].forEach(function (e) {
        var li = document.createElement("li");
        if (e.thumb) {
          var img = document.createElement("img");
          img.src = e.thumb; img.alt = ""; img.width = 48; img.height = 48; img.loading = "lazy";
          li.appendChild(img);
        }
        var span = document.createElement("span");
        span.textContent = e.title;
        li.appendChild(span);
        var rm = document.createElement("button");
        rm.type = "button";
        rm.dataset.unmark = e.id;
        rm.dataset.side = side;
        rm.textContent = "Remove";
        var hidden = document.createElement("span");
        hidden.className = "visually-hidden";
        hidden.textContent = " " + e.title;
        rm.appendChild(hidden);
        li.appendChild(rm);
        list.appendChild(li);
      });
    });
    var find = trayEl.querySelector("[data-find-more]");
    if (find) {
      var def = encodeDefinition(ids(tray.positive), ids(tray.negative));
      var q = trayEl.dataset.q || "";
      var tooLong = def.length > MAX_LINK;
      find.href = root + "/search?" + (q ? "q=" + encodeURIComponent(q) + "&" : "") + "ex=" + def;
      find.setAttribute("aria-disabled", tooLong || !tray.positive.length && !q ? "true" : "false");
    }
  }

  function toggle(list, e) {
    var i = indexOf(list, e.id);
    if (i >= 0) { list.splice(i, 1); return false; }
    list.push(e);
    return true;
  }

  document.addEventListener("click", function (ev) {
    var t = ev.target.closest ? ev.target.closest("button, a") : null;
    if (!t) return;
    if (t.dataset.mark) {
      var holder = t.closest("[data-marks]");
      var e = entry(holder);
      var side = t.dataset.mark;
      var other = side === "positive" ? "negative" : "positive";
      var j = indexOf(tray[other], e.id);
      if (j >= 0) tray[other].splice(j, 1);
      var added = toggle(tray[side], e);
      save("tray", tray);
      syncMarks(); renderTray();
      say(statusEl, (added ? (side === "positive" ? "Marked as wanted: " : "Marked as not wanted: ") : "Unmarked: ") + e.title);
    } else if (t.hasAttribute("data-keep")) {
      var kept = toggle(library, entry(t.closest("[data-marks]")));
      save("library", library);
      syncMarks();
      say(statusEl, kept ? "Kept in my library." : "Taken out of my library.");
    } else if (t.dataset.unmark) {
      var k = indexOf(tray[t.dataset.side], t.dataset.unmark);
      if (k >= 0) tray[t.dataset.side].splice(k, 1);
      save("tray", tray);
      syncMarks(); renderTray();
      var next = trayEl && trayEl.querySelector("[data-unmark], [data-find-more]");
      if (next && !trayEl.hidden) next.focus();
    } else if (t.hasAttribute("data-clear-tray")) {
      tray = { positive: [], negative: [] };
      save("tray", tray);
      syncMarks(); renderTray();
    } else if (t.hasAttribute("data-find-more") && t.getAttribute("aria-disabled") === "true") {
      ev.preventDefault();
      say(statusEl, tray.positive.length ? "Too many examples for a link: save them as a facet instead."
        : "Mark at least one result as wanted (👍) first.");
    }
  });

  var saveForm = document.querySelector("[data-save-facet]");
  if (saveForm) {
    saveForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var name = saveForm.elements.name.value.trim();
      say(statusEl, "Saving…");
      fetch(root + "/api/facets", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify({ name: name, positive: ids(tray.positive), negative: ids(tray.negative) })
      }).then(function (r) {
        return r.json().then(function (body) { return { ok: r.ok, body: body }; });
      }).then(function (res) {
        if (!res.ok) { say(statusEl, "Not saved: " + ((res.body.error || {}).message || "the server refused it")); return; }
        var skipped = (res.body.skipped || []).length;
        say(statusEl, "Saved the facet " + res.body.name + (skipped ? " (" + skipped + " examples left out)" : "") + ".");
        window.location.href = root + "/search?facet=" + encodeURIComponent(res.body.name);
      }).catch(function () { say(statusEl, "Not saved: the server could not be reached."); });
    });
  }

  // -- my library --------------------------------------------------------------------------
  var lib = document.querySelector("[data-library]");
  var libStatus = document.querySelector("[data-library-status]");
  if (lib) {
    var shown = lib.querySelector("[data-library-shown]");
    var form = lib.querySelector("[data-library-form]");
    if (!shown && library.length && form) {
      form.elements.ids.value = JSON.stringify(ids(library));
      form.submit();
    }
    lib.addEventListener("click", function (ev) {
      var b = ev.target.closest ? ev.target.closest("button") : null;
      if (!b) return;
      if (b.dataset.libraryRemove) {
        var i = indexOf(library, b.dataset.libraryRemove);
        if (i >= 0) library.splice(i, 1);
        save("library", library);
        var li = b.closest("[data-library-item]");
        if (li) li.remove();
        say(libStatus, "Taken out of my library.");
      } else if (b.hasAttribute("data-library-clear")) {
        library = [];
        save("library", library);
        var items = lib.querySelector("[data-library-items]");
        if (items) items.textContent = "";
        say(libStatus, "My library is empty.");
      } else if (b.dataset.libraryExport) {
        var fmt = b.dataset.libraryExport;
        say(libStatus, "Preparing the export…");
        fetch(root + "/api/export/selection", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ ids: ids(library), format: fmt })
        }).then(function (r) {
          if (!r.ok) return r.json().then(function (body) { throw new Error((body.error || {}).message || "refused"); });
          return r.blob();
        }).then(function (blob) {
          var a = document.createElement("a");
          a.href = URL.createObjectURL(blob);
          a.download = fmt === "csv" ? "my-library.csv" : "my-library-manifest.json";
          document.body.appendChild(a);
          a.click();
          a.remove();
          say(libStatus, "Exported " + library.length + " items.");
        }).catch(function (err) { say(libStatus, "Not exported: " + err.message); });
      }
    });
  }

  syncMarks();
  renderTray();
})();
