"""Figure builders of the Trust section (dashboard.trust.figures): traces carry the inputs, Plotly accepts them."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go

from dashboard.trust import figures as tf

LABELS = {"gradcam": "Grad-CAM", "saliency": "Saliency"}


def curve(scores, auc=None, nauc=None):
    fractions = list(np.linspace(0, 1, len(scores)))
    return {"fractions": fractions, "scores": list(scores), "auc": auc if auc is not None else float(np.mean(scores)),
            "normalized_auc": nauc}  # fmt: skip


def faithfulness(shared_random: bool = True):
    random_del, random_ins = curve([3, 2.5, 1], 2.2, 0.6), curve([1, 1.5, 3], 1.8, 0.4)
    other_del = random_del if shared_random else curve([3, 2.8, 1], 2.4, 0.7)
    return {
        "gradcam": {"deletion": curve([3, 1.2, 1], 1.6, 0.3), "insertion": curve([1, 2.6, 3], 2.3, 0.65),
                    "random_deletion": random_del, "random_insertion": random_ins, "inside_share": 0.8},
        "saliency": {"deletion": curve([3, 2.0, 1], 2.0, 0.5), "insertion": curve([1, 2.0, 3], 2.0, 0.5),
                     "random_deletion": other_del, "random_insertion": random_ins, "inside_share": float("nan")},
    }  # fmt: skip


def valid(figure) -> go.Figure:
    json.dumps(figure, allow_nan=False)  # Dash sends JSON: no NaN may slip through
    return go.Figure(figure)  # Plotly's schema validation raises on a wrong property


def test_curves_figure_has_both_panels_each_method_and_one_shared_random_curve():
    fig = tf.curves_figure(faithfulness(), LABELS, tf.method_colours(["gradcam", "saliency"]))
    valid(fig)
    names = [(t["name"], t["xaxis"]) for t in fig["data"]]
    assert names == [("Grad-CAM", "x"), ("Saliency", "x"), ("random order", "x"),
                     ("Grad-CAM", "x2"), ("Saliency", "x2"), ("random order", "x2")]  # fmt: skip
    assert fig["data"][0]["y"] == [3, 1.2, 1] and fig["data"][3]["y"] == [1, 2.6, 3]
    assert [t["showlegend"] for t in fig["data"]] == [True] * 3 + [False] * 3
    assert fig["data"][2]["line"]["dash"] == "dash"
    assert fig["data"][0]["line"]["color"] != fig["data"][1]["line"]["color"]
    assert fig["data"][0]["line"]["color"] == fig["data"][3]["line"]["color"]  # same colour in both panels


def test_curves_figure_draws_distinct_random_curves_separately():
    fig = tf.curves_figure(faithfulness(shared_random=False), LABELS)
    deletion_randoms = [t["name"] for t in fig["data"] if t["xaxis"] == "x" and t["name"].startswith("random")]
    assert deletion_randoms == ["random order 1", "random order 2"]
    insertion_randoms = [t["name"] for t in fig["data"] if t["xaxis"] == "x2" and t["name"].startswith("random")]
    assert insertion_randoms == ["random order"]


def test_auc_rows_mark_the_best_methods_and_the_gap_over_random():
    rows = {r["method"]: r for r in tf.auc_rows(faithfulness(), LABELS)}
    assert rows["gradcam"]["best_deletion"] and not rows["saliency"]["best_deletion"]
    assert rows["gradcam"]["best_insertion"] and not rows["saliency"]["best_insertion"]
    assert np.isclose(rows["gradcam"]["deletion_gap"], 0.6 - 0.3)  # random - method: positive beats random
    assert np.isclose(rows["gradcam"]["insertion_gap"], 0.65 - 0.4)
    assert np.isclose(rows["saliency"]["insertion_gap"], 0.5 - 0.4)
    assert rows["gradcam"]["inside_share"] == 0.8 and rows["saliency"]["inside_share"] is None  # NaN -> None
    assert rows["gradcam"]["label"] == "Grad-CAM"


def test_auc_rows_with_missing_normalised_auc_have_no_gap():
    data = faithfulness()
    data["gradcam"]["deletion"]["normalized_auc"] = float("nan")
    rows = {r["method"]: r for r in tf.auc_rows(data)}
    assert rows["gradcam"]["deletion_gap"] is None and rows["gradcam"]["deletion_auc"] == 1.6


def test_share_figure_bars_and_the_uniform_line():
    fig = tf.share_figure({"gradcam": 0.8, "saliency": float("nan")}, 0.25, LABELS)
    valid(fig)
    bar = fig["data"][0]
    assert bar["y"] == ["Grad-CAM", "Saliency"] and bar["x"] == [0.8, 0.0]
    assert bar["text"] == ["80%", "no positive attribution"]
    assert fig["layout"]["shapes"][0]["x0"] == 0.25 and "25%" in fig["layout"]["annotations"][0]["text"]


def sanity(flag_saliency: bool = True):
    return {
        "depths": ["logits", "dec_conv", "mid_conv", "a_very_long_layer_name_indeed"],
        "spearman": {"gradcam": [0.9, 0.4, 0.1, 0.0], "saliency": [0.99, 0.98, 0.97, float("nan")]},
        "ssim": {"gradcam": [0.8, 0.3, 0.1, 0.05], "saliency": [0.99, 0.97, 0.96, 0.95]},
        "flagged": {"gradcam": False, "saliency": flag_saliency},
        "threshold": 0.5,
    }


def test_sanity_figure_flags_methods_whose_maps_barely_change():
    fig = tf.sanity_figure(sanity(), LABELS, tf.method_colours(["gradcam", "saliency"]))
    valid(fig)
    spearman = [t for t in fig["data"] if t["xaxis"] == "x"]
    ssim = [t for t in fig["data"] if t["xaxis"] == "x2"]
    assert [t["name"] for t in spearman] == ["Grad-CAM", f"{tf.FLAG} Saliency"]
    assert spearman[1]["line"]["width"] > spearman[0]["line"]["width"] and spearman[1]["line"]["dash"] == "dot"
    assert spearman[1]["y"] == [0.99, 0.98, 0.97, None] and ssim[0]["y"] == [0.8, 0.3, 0.1, 0.05]
    assert spearman[0]["x"] == [1, 2, 3, 4] and spearman[0]["customdata"][0] == "logits"
    ticktext = fig["layout"]["xaxis"]["ticktext"]
    assert ticktext[:3] == ["logits", "dec_conv", "mid_conv"] and ticktext[3].endswith("\u2026")
    assert fig["layout"]["shapes"][0]["y0"] == 0.5  # the flagging threshold
    unflagged = tf.sanity_figure(sanity(flag_saliency=False), LABELS)
    assert all(tf.FLAG not in t["name"] for t in unflagged["data"])


def test_agreement_figure_shows_the_matrix_on_a_fixed_scale():
    matrix = np.array([[1.0, 0.3, -0.2], [0.3, 1.0, np.nan], [-0.2, np.nan, 1.0]])
    fig = tf.agreement_figure(["gradcam", "saliency", "shap"], matrix, LABELS)
    valid(fig)
    heat = fig["data"][0]
    assert heat["x"] == ["Grad-CAM", "Saliency", "shap"] == heat["y"]
    assert heat["z"][0] == [1.0, 0.3, -0.2] and heat["z"][1][2] is None
    assert (heat["zmin"], heat["zmax"]) == (-1, 1)


def test_method_colours_are_distinct_and_stable():
    names = ["gradcam", "hirescam", "gradcam++", "layercam", "saliency", "gradient_x_input", "smoothgrad",
             "integrated_gradients", "shap", "deep_shap"]  # fmt: skip
    colours = tf.method_colours(names)
    assert len(set(colours.values())) == len(names)
    assert tf.method_colours(names) == colours


def test_auc_table_bolds_the_best_methods_and_flag_note_names_flagged_methods():
    from dash import html

    from dashboard.trust import layout as trust_layout

    table = trust_layout.auc_table(tf.auc_rows(faithfulness(), LABELS))
    rows = [c for c in table._traverse() if isinstance(c, html.Tr) and getattr(c, "data-method", None)]
    assert [getattr(r, "data-method") for r in rows] == ["gradcam", "saliency"]
    bold = [b.children for b in rows[0]._traverse() if isinstance(b, html.B)]
    assert bold == ["1.6", "2.3"] and not [b for b in rows[1]._traverse() if isinstance(b, html.B)]
    note = trust_layout.flag_note(sanity(), LABELS)
    assert "Saliency" in str(note) and "Grad-CAM" not in str(note) and "0.50" in str(note)
    assert "No method flagged" in str(trust_layout.flag_note(sanity(flag_saliency=False), LABELS))
    text = trust_layout.status_text(["gradcam"], ["shap"], LABELS, "dec_conv")
    assert text == "Measuring 1 map(s): Grad-CAM; CAMs at layer dec_conv. Not computed yet (skipped): shap."
