"""Procedural mushroom images with pixel-exact part masks.

The project cannot download weights or data, so the demo segmentation model is trained on images drawn here.
Each sample is a 128x128 (by default) RGB picture of one mushroom in a forest-floor scene together with an
(H, W) mask of class ids in the order of ``CLASS_NAMES``: background, cap, gills, ring, stem, volva.

Variation covers the things an explainer should be tested against: several species-like colour schemes, cap
shapes (convex, flat, bell), cap textures (spots/warts, mottled noise, radial fibrils, gradients), directional
lighting and colour casts, scale, position, tilt and stem bend, camera pose (from below with visible gills, level,
oblique from above and straight from above where gills, ring and stem are hidden), species without a ring or
volva, volvas partly buried in soil, clutter (grass blades in front of and behind the mushroom, leaves, pebbles,
twigs, soil noise), blur and sensor noise.  Ground truth is exact because every part is drawn from the same
analytic shapes that make its mask.

Everything is a pure function of a ``numpy.random.Generator``: ``generate_dataset(n, seed)`` draws sample ``i``
from ``np.random.default_rng([seed, i])``, so different seeds give independent images and a dataset prefix does
not depend on ``n``.  The seeds the project uses are defined here, once:

* ``TRAIN_SEED`` (training), ``VAL_SEED`` (validation during training),
* ``EVAL_SEED`` (held-out evaluation, ``python -m models.evaluate``; never used for training),
* ``SAMPLES_SEED`` (the committed sample PNGs in ``assets/samples``).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASS_NAMES: tuple[str, ...] = ("background", "cap", "gills", "ring", "stem", "volva")
BACKGROUND, CAP, GILLS, RING, STEM, VOLVA = range(6)

TRAIN_SEED = 1
VAL_SEED = 2
EVAL_SEED = 1_000_003
SAMPLES_SEED = 2_024
RESERVED_SEEDS = {EVAL_SEED: "evaluation", SAMPLES_SEED: "samples"}

POSES = ("below", "level", "oblique", "top")
_POSE_P = (0.42, 0.23, 0.2, 0.15)

# name: (cap rgb, cap jitter, gills rgb, stem rgb, P(ring), P(volva), cap texture, spot rgb or None)
_SPECIES = {
    "fly_agaric": ((0.82, 0.12, 0.08), 0.10, (0.95, 0.93, 0.86), (0.93, 0.91, 0.84), 0.85, 0.75, "spots",
                   (0.97, 0.95, 0.88)),
    "death_cap": ((0.62, 0.64, 0.36), 0.08, (0.96, 0.96, 0.92), (0.92, 0.92, 0.86), 0.85, 0.9, "fibrils", None),
    "panther": ((0.45, 0.32, 0.2), 0.08, (0.96, 0.95, 0.9), (0.92, 0.9, 0.84), 0.65, 0.8, "spots",
                (0.95, 0.94, 0.9)),
    "parasol": ((0.8, 0.72, 0.58), 0.06, (0.95, 0.92, 0.85), (0.78, 0.7, 0.6), 0.95, 0.0, "spots",
                (0.45, 0.32, 0.22)),
    "field": ((0.93, 0.9, 0.84), 0.05, (0.72, 0.45, 0.42), (0.94, 0.92, 0.88), 0.7, 0.0, "noise", None),
    "brittlegill": ((0.7, 0.2, 0.3), 0.15, (0.97, 0.95, 0.85), (0.95, 0.94, 0.9), 0.0, 0.0, "gradient", None),
    "brown": ((0.55, 0.38, 0.22), 0.12, (0.86, 0.78, 0.6), (0.8, 0.72, 0.58), 0.3, 0.0, "noise", None),
    "grisette": ((0.55, 0.52, 0.48), 0.08, (0.95, 0.95, 0.93), (0.9, 0.89, 0.86), 0.0, 0.95, "fibrils", None),
    "angel": ((0.95, 0.95, 0.93), 0.03, (0.97, 0.97, 0.95), (0.95, 0.95, 0.93), 0.9, 0.9, "gradient", None),
    "yellow": ((0.9, 0.7, 0.15), 0.1, (0.93, 0.88, 0.6), (0.88, 0.82, 0.55), 0.5, 0.3, "gradient", None),
}
_SPECIES_NAMES = tuple(_SPECIES)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Band-limited noise of unit-ish amplitude: a (cells x cells) normal grid resized bicubically."""
    small = rng.standard_normal((cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(small).resize((size, size), Image.Resampling.BICUBIC))


def _jitter(rng: np.random.Generator, rgb: tuple[float, float, float], amount: float) -> np.ndarray:
    return np.clip(np.asarray(rgb, np.float32) + rng.normal(0.0, amount, 3).astype(np.float32), 0.02, 1.0)


def _paint(img: np.ndarray, mask: np.ndarray, region: np.ndarray, colour: np.ndarray, cls: int | None) -> None:
    np.copyto(img, colour, where=region[..., None])
    if cls is not None:
        np.copyto(mask, np.uint8(cls), where=region)


def _background(rng: np.random.Generator, size: int, pose: str, horizon: float) -> np.ndarray:
    """Forest floor: soil/moss/grass ground, and for side views a blurred far background above the horizon."""
    yy = np.arange(size, dtype=np.float32)[:, None]
    ground = _jitter(rng, [(0.36, 0.26, 0.17), (0.3, 0.38, 0.18), (0.42, 0.34, 0.22), (0.22, 0.3, 0.14),
                           (0.5, 0.42, 0.3)][rng.integers(5)], 0.04)
    n1 = _smooth_noise(rng, size, int(rng.integers(6, 20)))
    n2 = _smooth_noise(rng, size, int(rng.integers(30, 64)))
    img = ground[None, None, :] * (1.0 + 0.15 * n1[..., None] + 0.12 * n2[..., None])
    if pose != "top":
        far = _jitter(rng, [(0.25, 0.35, 0.2), (0.5, 0.58, 0.45), (0.2, 0.22, 0.16), (0.55, 0.65, 0.75),
                            (0.35, 0.3, 0.22)][rng.integers(5)], 0.05)
        nf = _smooth_noise(rng, size, int(rng.integers(3, 8)))
        far_img = far[None, None, :] * (1.0 + 0.25 * nf[..., None])
        edge = horizon + 4.0 * _smooth_noise(rng, size, 6)[0][None, :]
        t = np.clip((yy - edge) / rng.uniform(2.0, 10.0), 0.0, 1.0)[..., None]
        img = far_img * (1 - t) + img * t
    return img.astype(np.float32)


def _clutter(rng: np.random.Generator, img: np.ndarray, size: int, pose: str, horizon: float) -> np.ndarray:
    """Leaves, pebbles, twigs, other blobs and grass drawn behind the mushroom."""
    pil = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    top = 0 if pose == "top" else int(max(0, horizon - 4))
    for _ in range(int(rng.integers(0, 9))):
        kind = rng.integers(4)
        cx, cy = rng.uniform(0, size), rng.uniform(top, size + 5)
        r = rng.uniform(2, 0.12 * size)
        if kind == 0:  # leaf
            col = [(150, 90, 40), (110, 70, 30), (170, 130, 50), (90, 110, 40), (130, 50, 30)][rng.integers(5)]
            a = rng.uniform(0, np.pi)
            t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
            px, py = r * np.cos(t), 0.45 * r * np.sin(t) * np.abs(np.cos(t / 2)) ** 0.2
            ca, sa = np.cos(a), np.sin(a)
            pts = [(cx + x * ca - y * sa, cy + x * sa + y * ca) for x, y in zip(px, py, strict=True)]
            draw.polygon(pts, fill=tuple(int(c * rng.uniform(0.7, 1.1)) for c in col))
        elif kind == 1:  # pebble / blob
            g = int(rng.integers(70, 190))
            col = (g, int(g * rng.uniform(0.85, 1.05)), int(g * rng.uniform(0.75, 1.0)))
            draw.ellipse([cx - r, cy - 0.7 * r, cx + r, cy + 0.7 * r], fill=col)
        elif kind == 2:  # twig
            a = rng.uniform(0, np.pi)
            ln = rng.uniform(0.15, 0.5) * size
            draw.line([(cx, cy), (cx + ln * np.cos(a), cy + ln * np.sin(a))],
                      fill=tuple(int(v) for v in rng.integers(40, 110, 3)), width=int(rng.integers(1, 4)))
        else:  # berry / round blob of a cap-like colour
            col = tuple(int(v) for v in rng.integers(60, 230, 3))
            rr = min(r, 6.0)
            draw.ellipse([cx - rr, cy - rr, cx + rr, cy + rr], fill=col)
    _grass(rng, draw, None, size, int(rng.integers(0, 14)), top)
    return np.asarray(pil, dtype=np.float32) / 255.0


def _grass(rng: np.random.Generator, draw: ImageDraw.ImageDraw, mdraw: ImageDraw.ImageDraw | None, size: int,
           count: int, top: int) -> None:
    """Tapered, slightly curved grass blades rising from the lower part of the picture."""
    base_g = rng.uniform(0.5, 1.1)
    for _ in range(count):
        x0 = rng.uniform(-5, size + 5)
        y0 = rng.uniform(max(top, 0.55 * size), size + 6)
        h = rng.uniform(0.12, 0.5) * size
        w = rng.uniform(1.0, 3.0)
        lean = rng.normal(0, 0.35)
        curv = rng.normal(0, 0.25)
        t = np.linspace(0, 1, 6)
        xs = x0 + h * (lean * t + curv * t * t)
        ys = y0 - h * t
        ws = w * (1 - t) + 0.2
        pts = [(x + wi, y) for x, y, wi in zip(xs, ys, ws, strict=True)]
        pts += [(x - wi, y) for x, y, wi in zip(xs[::-1], ys[::-1], ws[::-1], strict=True)]
        g = rng.uniform(0.55, 1.0) * base_g
        col = (int(min(255, 70 * g + rng.uniform(0, 60))), int(min(255, 150 * g)), int(min(255, 50 * g)))
        draw.polygon(pts, fill=col)
        if mdraw is not None:
            mdraw.polygon(pts, fill=255)


def _side_mushroom(rng: np.random.Generator, img: np.ndarray, mask: np.ndarray, size: int, pose: str,
                   sp: dict, light: np.ndarray) -> tuple[float, float, float, float]:
    """Draw a mushroom seen from the side (below / level / oblique).

    Returns the base x, base y, the half width of the base and the visible height of the volva (0 if none).
    """
    shape = ("convex", "flat", "bell")[rng.choice(3, p=(0.5, 0.25, 0.25))]
    scale = rng.uniform(0.55, 0.95) * size          # total height of the mushroom
    R = scale * rng.uniform(0.26, 0.42)             # cap half width
    if shape == "flat":
        R *= 1.12
        hc = R * rng.uniform(0.22, 0.38)
        pa, pb = rng.uniform(3.5, 6.0), 4.0
    elif shape == "bell":
        R *= 0.85
        hc = R * rng.uniform(0.8, 1.15)
        pa, pb = rng.uniform(1.3, 1.8), rng.uniform(0.9, 1.3)
    else:
        hc = R * rng.uniform(0.45, 0.75)
        pa, pb = 2.0, 2.0
    R = min(R, 0.46 * size)
    # vertical semi-axis of the cap rim ellipse: <0 camera below (gills visible), ~0 level, >0 above
    if pose == "below":
        e = -R * rng.uniform(0.14, 0.42)
    elif pose == "level":
        e = R * rng.uniform(-0.03, 0.03)
    else:
        e = R * rng.uniform(0.25, 0.6)
    stem_len = max(scale - hc, 0.3 * scale)
    wt = R * rng.uniform(0.14, 0.26)
    wb = wt * rng.uniform(1.0, 1.5)
    bend = R * rng.normal(0, 0.18)
    theta = rng.normal(0, 0.12)
    bx = rng.uniform(0.2 * size, 0.8 * size)
    by = rng.uniform(max(stem_len + hc + 3, 0.6 * size), size - 2)
    cy = stem_len
    cx = bend
    has_ring = rng.random() < sp["p_ring"] * (0.4 if pose == "oblique" else 1.0)
    has_volva = rng.random() < sp["p_volva"]
    noise_fib = _smooth_noise(rng, size, 48)[:, :1]
    noise_dirt = _smooth_noise(rng, size, 24)
    noise_edge = _smooth_noise(rng, size, 10)

    # work inside the bounding box of the mushroom only (local frame corners mapped to the image)
    c, s = float(np.cos(theta)), float(np.sin(theta))
    lu = np.array([-R - abs(bend) - 3 * wb - 4, R + abs(bend) + 3 * wb + 4])
    lv = np.array([-0.4 * cy - 4, cy + hc + 4])
    cu, cv = np.meshgrid(lu, lv)
    px = bx + c * cu - s * cv
    py = by - (s * cu + c * cv)
    x0, x1 = int(max(0, np.floor(px.min()))), int(min(size, np.ceil(px.max()) + 1))
    y0, y1 = int(max(0, np.floor(py.min()))), int(min(size, np.ceil(py.max()) + 1))
    img, mask = img[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    # local frame: u to the right, v up from the stem base, rotated by theta about the base
    dx, dy = xx - bx, by - yy
    u, v = c * dx + s * dy, -s * dx + c * dy

    # --- stem ---
    tv = np.clip(v / cy, 0, 1)
    centre = bend * tv ** 2
    half = wb + (wt - wb) * tv
    if rng.random() < 0.3:  # club-shaped / bulbous base
        half = half + wb * 0.5 * np.exp(-((v / (0.12 * cy)) ** 2))
    stem = (np.abs(u - centre) <= half) & (v >= -0.3 * cy) & (v <= cy + 1)
    nxs = np.clip((u - centre) / np.maximum(half, 1e-3), -1, 1)
    shade = 0.45 + 0.55 * np.clip(nxs * light[0] + np.sqrt(1 - nxs ** 2) * light[2], 0, 1)
    fib = np.asarray(Image.fromarray(np.repeat(noise_fib, size, 1)).rotate(
        np.degrees(theta), resample=Image.Resampling.BILINEAR))[y0:y1, x0:x1]
    stem_col = sp["stem"][None, None, :] * (shade * (1 + 0.06 * fib))[..., None]
    if rng.random() < 0.5:  # scaly / zig-zag band pattern
        stem_col = stem_col * (1 - 0.08 * (np.sin(v * rng.uniform(0.5, 1.2)) > 0.6))[..., None]
    _paint(img, mask, stem, stem_col, STEM)

    # --- volva: a lobed sac around the stem base, partly below ground ---
    volva_top = 0.0
    if has_volva:
        hv = max(0.1 * cy, 6.0) * rng.uniform(1.0, 1.7)
        wv = wb * rng.uniform(1.5, 2.1) + 2
        vc = rng.uniform(0.15, 0.5) * hv
        lobes = 1 + 0.15 * np.sin(u * rng.uniform(0.3, 0.7) + rng.uniform(0, 6))
        rim = vc + hv * (0.7 + 0.3 * lobes) * np.sqrt(np.clip(1 - (u / wv) ** 2, 0, 1))
        sac = ((u / wv) ** 2 + ((v - vc) / hv) ** 2 <= 1) & (v <= rim)
        volva_top = vc + hv
        vn = np.clip(u / wv, -1, 1)
        vshade = 0.5 + 0.5 * np.clip(vn * light[0] + np.sqrt(1 - vn ** 2) * light[2], 0, 1)
        vcol = _jitter(rng, (0.9, 0.88, 0.82), 0.05)
        dirt = np.clip(noise_dirt[y0:y1, x0:x1], 0, None)
        volva_col = vcol[None, None, :] * vshade[..., None] * (1 - 0.2 * dirt[..., None])
        volva_col = volva_col * (1 - 0.18 * np.exp(-(((v - rim) / 1.5) ** 2)))[..., None]
        _paint(img, mask, sac, volva_col, VOLVA)

    # --- ring: a hanging skirt below the cap ---
    if has_ring:
        gap = max(-e, e, 0) + 2
        v_top = cy - max(gap, rng.uniform(0.1, 0.3) * cy)
        hr = max(rng.uniform(0.08, 0.14) * cy, 6.0)
        v_top = max(v_top, volva_top + hr + 4)
        if v_top < cy - 1:
            tt = np.clip((v_top - v) / hr, 0, 1)
            c_r = bend * np.clip(v_top / cy, 0, 1) ** 2
            h_r = wt + (wb - wt) * (1 - v_top / cy)
            flare = rng.uniform(1.6, 2.4)
            rhalf = h_r * (1.15 + (flare - 1.15) * tt ** 0.7) + 0.5
            wave = 1.2 * np.sin(u * rng.uniform(0.5, 1.0) + rng.uniform(0, 6))
            ring = (np.abs(u - c_r) <= rhalf) & (v <= v_top) & (v >= v_top - hr + wave)
            rn = np.clip((u - c_r) / rhalf, -1, 1)
            rshade = 0.5 + 0.5 * np.clip(rn * light[0] + np.sqrt(1 - rn ** 2) * light[2], 0, 1)
            rcol = np.clip(sp["stem"] * rng.uniform(0.95, 1.1), 0, 1)
            folds = 1 - 0.1 * (np.sin((u - c_r) * rng.uniform(0.8, 1.6)) > 0.3)
            ring_col = rcol[None, None, :] * (rshade * folds * (0.8 + 0.2 * (1 - tt)))[..., None]
            _paint(img, mask, ring, ring_col, RING)

    # --- gills: the underside crescent, visible from below ---
    if e < -1.5:
        G = -e
        ga = (u - cx) / (R * 0.97)
        gb = (cy - v) / G
        gills = (ga ** 2 + gb ** 2 <= 1) & (v <= cy)
        phi = np.arctan2(gb, ga)
        rho = np.sqrt(ga ** 2 + gb ** 2)
        stripes = 0.5 + 0.5 * np.cos(rng.uniform(25, 60) * phi)
        gcol = sp["gills"][None, None, :] * (
            (0.55 + 0.3 * rho) * (0.78 + 0.22 * stripes))[..., None] * rng.uniform(0.75, 1.0)
        _paint(img, mask, gills, gcol, GILLS)

    # --- cap: dome profile above the rim; from above also the near half of the rim ellipse ---
    t = (v - cy) / hc
    prof = R * np.clip(1 - np.clip(t, 0, 1) ** pa, 0, 1) ** (1 / pb)
    edge = 1 + 0.03 * noise_edge[y0:y1, x0:x1]
    cap = (t >= 0) & (t <= 1) & (np.abs(u - cx) <= prof * edge)
    if e > 1.5:
        cap = cap | ((((u - cx) / R) ** 2 + ((v - cy) / e) ** 2 <= 1) & (v < cy))
    nx = (u - cx) / R
    ny = np.where(v >= cy, (v - cy) / hc, -(v - cy) / max(e, 1.0) * 0.3)
    nz = np.sqrt(np.clip(1 - nx ** 2 - ny ** 2, 0.02, 1))
    nrm = np.sqrt(nx ** 2 + ny ** 2 + nz ** 2)
    lam = np.clip((nx * light[0] + ny * light[1] + nz * light[2]) / nrm, 0, 1)
    cap_col = _cap_texture(rng, sp, u - cx, v - cy, R, hc, lam)
    _paint(img, mask, cap, cap_col, CAP)
    return bx, by, wb, (volva_top if has_volva else 0.0)


def _cap_texture(rng: np.random.Generator, sp: dict, du: np.ndarray, dv: np.ndarray, R: float,
                 hc: float, lam: np.ndarray) -> np.ndarray:
    """Cap colour field: base colour, lighting, and a species texture (spots, fibrils, noise, gradient)."""
    col = sp["cap"][None, None, :]
    rr = np.sqrt((du / R) ** 2 + (dv / max(hc, 1)) ** 2)
    out = col * (0.35 + 0.75 * lam)[..., None]
    tex = sp["tex"] if rng.random() < 0.8 else ("spots", "fibrils", "noise", "gradient")[rng.integers(4)]
    if tex == "gradient" or rng.random() < 0.4:  # darker centre
        out = out * (1 - 0.25 * np.clip(1 - rr, 0, 1) ** 2)[..., None] * rng.uniform(0.9, 1.0)
    if tex == "noise":
        h, w = lam.shape
        cells = int(rng.integers(12, 40))
        out = out * (1 + 0.12 * _smooth_noise(rng, max(h, w), cells)[:h, :w])[..., None]
    elif tex == "fibrils":
        ang = np.arctan2(dv, du)
        out = out * (1 + 0.07 * np.sin(ang * rng.uniform(40, 90)) * np.clip(rr, 0, 1))[..., None]
    elif tex == "spots":
        spot = sp["spot"] if sp["spot"] is not None else np.array((0.95, 0.94, 0.9), np.float32)
        k = int(rng.integers(5, 25))
        pu = rng.uniform(-1, 1, k) * R
        pv = rng.uniform(-0.8, 1.0, k) * max(hc, R * 0.4)
        pr = rng.uniform(0.04, 0.11, k) * R + 0.6
        d2 = (du[..., None] - pu) ** 2 + (dv[..., None] - pv) ** 2
        hit = (d2 <= pr ** 2).any(-1)
        out = np.where(hit[..., None], spot[None, None, :] * (0.55 + 0.5 * lam)[..., None], out)
    return out


def _top_mushroom(rng: np.random.Generator, img: np.ndarray, mask: np.ndarray, size: int, sp: dict,
                  light: np.ndarray) -> None:
    """A cap seen straight from above: nothing but the cap is visible."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    R = rng.uniform(0.2, 0.42) * size
    k = rng.uniform(0.82, 1.0)
    cx, cy = rng.uniform(R * 0.8, size - R * 0.8), rng.uniform(R * 0.8, size - R * 0.8)
    a = rng.uniform(0, np.pi)
    dx, dy = xx - cx, yy - cy
    du = np.cos(a) * dx + np.sin(a) * dy
    dv = (-np.sin(a) * dx + np.cos(a) * dy) / k
    ang = np.arctan2(dv, du)
    wobble = 1 + 0.04 * np.sin(ang * rng.integers(3, 8) + rng.uniform(0, 6)) + 0.02 * np.sin(ang * 13)
    r = np.sqrt(du ** 2 + dv ** 2) / (R * wobble)
    cap = r <= 1
    if rng.random() < 0.5:  # cast shadow of the cap on the ground
        sh = np.sqrt((du + 0.15 * R) ** 2 + (dv + 0.1 * R) ** 2) / (R * 1.08) <= 1
        img[sh & ~cap] *= 0.6
    nz = np.sqrt(np.clip(1 - r ** 2, 0.02, 1))
    flat = rng.uniform(0.3, 1.0)
    nx, ny = dx / R * flat, -dy / R * flat
    lam = np.clip((nx * light[0] + ny * light[1] + nz * light[2]) / np.sqrt(nx ** 2 + ny ** 2 + nz ** 2), 0, 1)
    cap_col = _cap_texture(rng, sp, du, dv, R, R, lam)
    _paint(img, mask, cap, cap_col, CAP)


def _species(rng: np.random.Generator) -> dict:
    name = _SPECIES_NAMES[rng.integers(len(_SPECIES_NAMES))]
    cap, cj, gills, stem, p_ring, p_volva, tex, spot = _SPECIES[name]
    return {
        "name": name,
        "cap": _jitter(rng, cap, cj),
        "gills": _jitter(rng, gills, 0.04),
        "stem": _jitter(rng, stem, 0.04),
        "p_ring": p_ring,
        "p_volva": p_volva,
        "tex": tex,
        "spot": None if spot is None else _jitter(rng, spot, 0.03),
    }


def generate_sample(rng: np.random.Generator, size: int = 128,
                    pose: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw one scene.

    Returns an (size, size, 3) uint8 RGB image and an (size, size) uint8 mask of class ids (``CLASS_NAMES``).
    ``pose`` forces one of ``POSES`` ("below": gills visible, "level", "oblique": from above, gills hidden, "top":
    only the cap visible); by default it is drawn at random.
    """
    if pose is None:
        pose = POSES[rng.choice(len(POSES), p=_POSE_P)]
    if pose not in POSES:
        raise ValueError(f"pose must be one of {POSES}, got {pose!r}")
    sp = _species(rng)
    elev = rng.uniform(0.3, 1.0)
    az = rng.uniform(-1.0, 1.0)
    light = np.array([az, elev, rng.uniform(0.4, 1.0)], np.float32)
    light /= np.linalg.norm(light)
    horizon = rng.uniform(0.1, 0.6) * size
    img = _background(rng, size, pose, horizon)
    img = _clutter(rng, img, size, pose, horizon)
    mask = np.zeros((size, size), np.uint8)
    if pose == "top":
        _top_mushroom(rng, img, mask, size, sp, light)
        base = None
    else:
        base = _side_mushroom(rng, img, mask, size, pose, sp, light)

    # foreground: soil mound burying the base, grass blades in front of the mushroom
    if base is not None:
        bx, by, wb, volva_h = base
        xs = np.arange(size, dtype=np.float32)
        yy = np.arange(size, dtype=np.float32)[:, None]
        depth = rng.uniform(0.0, 0.45) * volva_h if volva_h else rng.uniform(0.0, 6.0)
        width = wb * rng.uniform(3.0, 6.0) + 4
        bump = depth * np.exp(-((xs - bx) / width) ** 2) + 1.2 * _smooth_noise(rng, size, 20)[0]
        soil = yy >= (by - bump)[None, :]
        soil_col = _jitter(rng, (0.3, 0.22, 0.15), 0.04)
        tex = 1 + 0.2 * _smooth_noise(rng, size, 50)
        _paint(img, mask, soil, soil_col[None, None, :] * tex[..., None], BACKGROUND)
    n_front = int(rng.integers(0, 10)) if rng.random() < 0.6 else 0
    if n_front:
        layer = Image.new("RGB", (size, size))
        lmask = Image.new("L", (size, size))
        _grass(rng, ImageDraw.Draw(layer), ImageDraw.Draw(lmask), size, n_front, 0)
        occ = np.asarray(lmask) > 127
        _paint(img, mask, occ, np.asarray(layer, np.float32) / 255.0, BACKGROUND)

    # global lighting: brightness, colour cast, linear illumination gradient
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    grad = 1 + rng.uniform(0, 0.35) * (xx * light[0] - yy * light[1])
    cast = rng.uniform(0.85, 1.15, 3).astype(np.float32)
    img = img * grad[..., None] * cast * rng.uniform(0.7, 1.25)
    out = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
    if rng.random() < 0.5:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    arr = np.asarray(out, np.float32)
    arr += rng.standard_normal(arr.shape, dtype=np.float32) * np.float32(rng.uniform(0, 7))
    return np.clip(arr + 0.5, 0, 255).astype(np.uint8), mask


def generate_dataset(n: int, seed: int, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples; sample ``i`` comes from ``np.random.default_rng([seed, i])``.

    Returns images (n, size, size, 3) uint8 and masks (n, size, size) uint8.
    """
    images = np.empty((n, size, size, 3), np.uint8)
    masks = np.empty((n, size, size), np.uint8)
    for i in range(n):
        images[i], masks[i] = generate_sample(np.random.default_rng([seed, i]), size)
    return images, masks
