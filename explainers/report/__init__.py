"""Batch report: which attribution method to trust, measured over many images and regions.

    python -m explainers.report --model M --images DIR --out DIR [--methods ...] [--limit N] [--shap]
    python -m models.report --out DIR      (the demo model on its held-out procedural set, ground-truth parts)

For every (image, region, target class) case it runs the chosen methods, deletion and insertion curves against random
order (Petsiuk et al. 2018), the share of positive attribution inside the region, cascading model randomization
(Adebayo et al. 2018) and the rank agreement between methods, then writes to DIR:

- ``report.md``: a per-method table (mean ± sd over regions), the agreement matrix, and how it was made;
- ``results.json``: the settings, per-region values and curves, and the summary;
- ``results.csv``: one row per (region, method).

Modules: `cases` (what is explained), `measure` (every metric per case, and the summary), `markdown` and `outputs`
(the files), `cli` (the command line and `run_report`, which takes any case source). Never imports Dash or the demo.
"""

from explainers.report.cases import Case, CaseSource, folder_cases, label_regions
from explainers.report.cli import main, run_report
from explainers.report.measure import evaluate_case, summarise

__all__ = ["Case", "CaseSource", "evaluate_case", "folder_cases", "label_regions", "main", "run_report", "summarise"]
