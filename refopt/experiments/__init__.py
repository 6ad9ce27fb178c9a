"""The paper's experiments, reproduced and extended: ``refopt reproduce``.

* :mod:`refopt.experiments.studies` -- the seven studies (grids and settings).
* :mod:`refopt.experiments.cells` -- the cell functions (pure functions of parameters
  and a seed).
* :mod:`refopt.experiments.runner` -- the resumable, executor-agnostic sweep runner.
* :mod:`refopt.experiments.figures`, :mod:`refopt.experiments.report` -- figures,
  summaries and the Markdown report.
* :func:`refopt.experiments.reproduce` -- everything above in one call.

matplotlib, tqdm and scikit-learn (the ``experiments`` extra) are imported only when
needed; dask is optional (any :class:`concurrent.futures.Executor` works).
"""

from refopt.experiments.reproduce import reproduce
from refopt.experiments.runner import run_cells
from refopt.experiments.studies import STUDIES, get_study

__all__ = ["STUDIES", "get_study", "reproduce", "run_cells"]
