/* SegXplain: the layer slider's tooltip shows the full layer name and output size, read from the hidden
 * #layer-names element (a JSON list written by the layout). Dash 4 sliders call window.dccFunctions[name](value). */
window.dccFunctions = window.dccFunctions || {};
window.dccFunctions.segxLayerLabel = function (value) {
  var el = document.getElementById("layer-names");
  if (!el) { return String(value); }
  try {
    var names = JSON.parse(el.getAttribute("data-layers") || "[]");
    var name = names[Math.round(value)];
    return name ? (Math.round(value) + 1) + ": " + name : String(value);
  } catch (e) {
    return String(value);
  }
};

/* Upload size cap: dcc.Upload's max_size makes the browser refuse a larger file before any callback runs, silently.
 * Report every refused file (its name and size) to the server through the upload-refused store, which shows why. */
(function () {
  function cap(el) {
    var box = el && el.closest ? el.closest(".upload-cap") : null;
    return box ? [box, parseInt(box.getAttribute("data-max-bytes") || "0", 10)] : null;
  }
  function check(target, files) {
    var found = cap(target);
    if (!found || !files || !found[1] || !window.dash_clientside || !window.dash_clientside.set_props) { return; }
    for (var i = 0; i < files.length; i++) {
      if (files[i].size > found[1]) {
        window.dash_clientside.set_props("image-upload-refused",
          {data: {name: files[i].name, size: files[i].size, at: Date.now()}});
        return;
      }
    }
  }
  document.addEventListener("drop", function (e) { check(e.target, e.dataTransfer && e.dataTransfer.files); }, true);
  document.addEventListener("change", function (e) {
    if (e.target && e.target.type === "file") { check(e.target, e.target.files); }
  }, true);
})();
