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
