"""`python -m explainers.report`: see `explainers.report.cli`."""

from explainers.report.cli import main

main()
