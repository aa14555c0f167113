// Uploads each chosen or dropped file on its own request to the upload API (the form's data-upload-url),
// with a progress bar per file, then asks the library tree to refresh. Without JavaScript the form posts
// to its action instead.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) return;
  var input = form.querySelector('input[type="file"]');
  var zone = document.getElementById("dropzone");
  var list = document.getElementById("upload-progress");

  function row(file) {
    var item = document.createElement("li");
    var name = document.createElement("span");
    name.className = "name";
    name.textContent = file.name;
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    var note = document.createElement("span");
    note.className = "note";
    note.textContent = "waiting";
    item.append(name, bar, note);
    list.appendChild(item);
    return { item: item, bar: bar, note: note };
  }

  function errorOf(xhr) {
    try {
      var body = JSON.parse(xhr.responseText);
      if (body.files && body.files[0] && body.files[0].error) return body.files[0].error;
      if (typeof body.detail === "string") return body.detail;
    } catch (e) { /* not JSON */ }
    return xhr.status === 0 ? "The connection was lost; try again." : "Upload failed (" + xhr.status + ").";
  }

  function send(file, ui) {
    return new Promise(function (resolve) {
      var data = new FormData();
      ["semester", "subject", "book"].forEach(function (field) {
        data.append(field, form.elements[field].value);
      });
      data.append("file", file, file.name);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.dataset.uploadUrl);
      xhr.upload.onprogress = function (event) {
        if (event.lengthComputable) {
          ui.bar.value = Math.round((event.loaded / event.total) * 100);
          ui.note.textContent = ui.bar.value + "%";
        }
      };
      xhr.onload = function () {
        if (xhr.status === 201) {
          ui.bar.value = 100;
          ui.note.textContent = "added";
          ui.item.className = "ok";
        } else if (xhr.status === 401) {
          window.location = form.dataset.loginUrl;
        } else {
          ui.note.textContent = errorOf(xhr);
          ui.item.className = "bad";
        }
        resolve();
      };
      xhr.onerror = function () {
        ui.note.textContent = errorOf(xhr);
        ui.item.className = "bad";
        resolve();
      };
      ui.note.textContent = "uploading";
      xhr.send(data);
    });
  }

  // Ask for the tree directly rather than through an event, which would be lost if htmx were not
  // listening yet.
  function refreshTree() {
    var tree = document.getElementById("library-tree");
    if (!tree) return;
    if (!window.htmx) {
      setTimeout(refreshTree, 50);
      return;
    }
    window.htmx.ajax("GET", tree.dataset.refreshUrl, { target: "#library-tree", swap: "outerHTML" });
  }

  function uploadAll(files) {
    if (!files.length || !form.reportValidity()) return;
    list.innerHTML = "";
    var jobs = Array.prototype.map.call(files, function (file) { return send(file, row(file)); });
    Promise.all(jobs).then(function () {
      input.value = "";
      refreshTree();
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    uploadAll(input.files);
  });
  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (event) {
      event.preventDefault();
      zone.classList.add("over");
    });
  });
  ["dragleave", "drop"].forEach(function (type) {
    zone.addEventListener(type, function () { zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    input.files = event.dataTransfer.files;
    input.required = false; // the files are chosen; validity now depends on the folder fields
    uploadAll(event.dataTransfer.files);
    input.required = true;
  });
})();

// A file deleted since the page was drawn (in another tab, say): its status cell polled a 404, which
// the banner above the page reports (app/errors.py). The cell then says so and stops asking: htmx
// polls only elements still in the page.
document.body.addEventListener("htmx:responseError", function (event) {
  var cell = event.detail.elt;
  if (event.detail.xhr.status !== 404 || !cell.matches("td.status[hx-trigger]")) return;
  var gone = document.createElement("td");
  gone.className = "status";
  gone.id = cell.id;
  var badge = document.createElement("span");
  badge.className = "badge";
  badge.textContent = "deleted";
  gone.appendChild(badge);
  cell.replaceWith(gone);
});
