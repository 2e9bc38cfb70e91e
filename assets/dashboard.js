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

/* SegXplain: the layer slider's clientside swap (dashboard/callbacks/layers.py). On a slider move, a layer found in
 * the prefetched cache (the layer-maps store, for these very cards) patches the CAM cards at once: the overlay layout
 * image, the colour bar's ticks, the subtitle, the note and the layer info; no server round trip. Either way it writes
 * the layer state (slider position, whether it was shown, the cached layers), from which the server prefetches the
 * neighbouring layers and, when it was not shown, answers with the patches itself. */
(function () {
  var OVERLAY_IMAGE = 1;  // dashboard.view.figures.OVERLAY_IMAGE
  function canonical(value) {
    if (Array.isArray(value)) { return "[" + value.map(canonical).join(",") + "]"; }
    if (value && typeof value === "object") {
      return "{" + Object.keys(value).sort().map(function (k) {
        return JSON.stringify(k) + ":" + canonical(value[k]);
      }).join(",") + "}";
    }
    return JSON.stringify(value === undefined ? null : value);
  }
  function same(a, b) { return canonical(a) === canonical(b); }
  /* Draw a card's new overlay at once: Plotly.react on the graph with only the overlay layout image changed (only
   * the layout images redraw; no plotly_relayout event, so no round trip). The callback's patches then bring the
   * figure prop to the same overlay, and Dash's own Plotly.react finds nothing left to draw. Without this the map
   * appeared only after Dash had applied every output (tens of ms of store updates on a full page). */
  function drawNow(method, source) {
    var holder = document.getElementById(JSON.stringify({method: method, type: "heatmap-graph"}));
    var gd = holder && holder.querySelector(".js-plotly-plot");
    var images = gd && gd.layout && gd.layout.images;
    if (!window.Plotly || !images || images.length <= OVERLAY_IMAGE || images[OVERLAY_IMAGE].source === source) {
      return;
    }
    var layout = Object.assign({}, gd.layout, {images: images.map(function (image, i) {
      return i === OVERLAY_IMAGE ? Object.assign({}, image, {source: source}) : image;
    })});
    window.Plotly.react(gd, gd.data, layout);
  }
  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.segx = window.dash_clientside.segx || {};
  window.dash_clientside.segx.applyCachedLayer = function (index, results, cache, state) {
    var dc = window.dash_clientside, context = dc.callback_context, none = dc.no_update;
    var methods = context.outputs_list.slice(0, 4).map(function (list) {
      return list.map(function (o) { return o.id.method; });
    });
    var untouched = methods.map(function (names) { return names.map(function () { return none; }); });
    if (!results || !results.question || index === null || index === undefined) {
      return untouched.concat([none, none]);
    }
    var valid = Boolean(cache && cache.key && cache.layers && same(cache.results, results));
    var have = valid ? Object.keys(cache.layers).filter(function (k) {
      return cache.layers[k] && cache.layers[k].key === cache.key;
    }).map(Number) : [];
    var moved = context.triggered.some(function (t) { return t.prop_id === "layer-slider.value"; });
    var entry = valid ? cache.layers[String(index)] : null;
    var next = {results: results, key: valid ? cache.key : null, index: index, have: have};
    if (!moved) {  // new cards: drawn at the slider's layer already
      next.shown = index;
      return untouched.concat([none, next]);
    }
    if (!entry || entry.key !== cache.key) {  // a miss: the server's miss path shows it
      next.shown = null;
      return untouched.concat([none, next]);
    }
    var maps = entry.maps;
    methods[0].forEach(function (name) { if (maps[name]) { drawNow(name, maps[name].source); } });
    function part(name, key) { return maps[name] ? maps[name][key] : none; }
    var figures = methods[0].map(function (name) {
      if (!maps[name]) { return none; }
      return new dc.Patch().assign(["layout", "images", OVERLAY_IMAGE, "source"], maps[name].source).build();
    });
    next.shown = index;
    return [
      figures,
      methods[1].map(function (name) { return part(name, "subtitle"); }),
      methods[2].map(function (name) { return part(name, "note"); }),
      methods[3].map(function (name) { return part(name, "scale"); }),
      entry.info,
      next
    ];
  };
})();

/* SegXplain: the one writer of an evented output (dashboard/callbacks/events.py), run in the browser so a selection
 * reaches the question callback without a server round trip per writer. decideEvents is events.decide's rule: of the
 * event stores that fired, the newest event (by its "at" stamp) wins; a property it does not set, or no event at
 * all, is left alone (null: no_update). tests/browser/test_event_writers.py runs both on the same cases. */
(function () {
  function decideEvents(props, fired) {
    var newest = null;
    fired.forEach(function (event) {
      if (event && (newest === null || Number(event.at || 0) > Number(newest.at || 0))) { newest = event; }
    });
    var wanted = (newest && newest.set) || {};
    return props.map(function (prop) {
      return Object.prototype.hasOwnProperty.call(wanted, prop) ? {value: wanted[prop]} : null;
    });
  }
  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.segx = window.dash_clientside.segx || {};
  window.dash_clientside.segx.decideEvents = decideEvents;
  window.dash_clientside.segx.writeEvents = function () {
    var dc = window.dash_clientside, context = dc.callback_context;
    var single = !Array.isArray(context.outputs_list);
    var props = (single ? [context.outputs_list] : context.outputs_list).map(function (o) { return o.property; });
    var fired = context.triggered.map(function (t) { return t.value; });
    var out = decideEvents(props, fired).map(function (chosen) { return chosen === null ? dc.no_update : chosen.value; });
    return single ? out[0] : out;
  };
})();
