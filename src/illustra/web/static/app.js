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
