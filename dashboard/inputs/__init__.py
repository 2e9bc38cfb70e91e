"""What the user brings: decoded and validated images (`images`), the bundled samples (`samples`), ground-truth masks
(`ground_truth`), and the selection on the mask figure turned into a boolean region (`selection`).

Pure functions over numpy and Pillow. May import: the standard library, numpy, Pillow, scikit-image, `dashboard.view`
(colours, rendering) and the engine's pure region geometry (`explainers.regions`). Never callbacks or the state store.
"""
