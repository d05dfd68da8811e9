"""The results grid (``run_experiments.py``): detectors x person-split seeds x score functions x LR
models, run through the pipeline's own runner, resumable, aggregated into ``results/<name>/results.json``.

Modules: ``config`` (the ``experiments`` section, keys in common/schema.py ``RESULTS_KEYS``), ``cells``
(planning), ``runner``, ``readback`` (a cell's figures), ``detectors``, ``aggregate`` (results.json),
``tables`` and ``page`` (docs/results.md).

Design (docs/results.md is generated from the aggregate by ``results_grid.page``):

- A **cell** is one detector x seed x score x model. Its name is ``<detector>-seed<k>-<score>-<model>``.
- Stages before 08 (split, training, feature dump, feature checks, t-SNE, classifier evaluation) do
  not depend on the score or the LR model, so they run once per detector x seed in an **upstream**
  folder ``<work_dir>/<detector>/seed<k>/upstream/`` (an ordinary run folder: ``output_dir``).
- Each cell has its own run folder ``<work_dir>/<detector>/seed<k>/<score>-<model>/`` in which the
  upstream stage folders appear as relative symbolic links (``02_split -> ../upstream/02_split``, ...)
  and stages 08 to the last one (scores, LR system, Tippett, DET, ECE, ELUB, robustness, report) run
  for real. So every cell folder is a complete run folder (the report sees every stage), and the
  runner's stamps see the upstream outputs through the links: retraining a detector makes its cells
  out of date.
- Every run is ``run_pipeline.py`` on the detector's base config with ``--set`` overrides: the grid's
  common overrides (``experiments.set``), the detector's (``experiments.detectors.<d>.set``), the
  seed (top-level ``seed``, from which the person split's seed derives), ``output_dir``, and in a cell
  ``slr.score`` / ``slr.model``. Config keys read by the upstream stages are pinned to their upstream
  values in the cell, so the cell's runner sees the upstream stages as up to date.
- **Resume**: before a run, the runner's own plan says whether any stage of the range must run; a
  cell whose upstream and cell ranges are all up to date is skipped ("up to date"). An interrupted
  cell has a stage without a stamp, which re-runs (stage 03 resumes from ``last.pt``; the other
  stages write their folders atomically), so a rerun finishes with the same figures.
- The cell's figures are read back from its run folder (the summaries of stages 10-14), never
  recomputed, and the test LR CSVs are copied to ``<results_dir>/cells/<cell>/``.
- A **fused cell** (``experiments.fusions``) ``<name>-seed<k>-fusion-<model>`` has no upstream of its own:
  ``slr.score: fusion`` over its members' upstream runs of seed k (their shared split), run after them.
- The paper's features (``paper_srm_features.npz``) run as a pseudo-detector without stages 03-07:
  the ``paper`` protocol on the paper's frame-level split, and the sound protocol on person splits
  (labelled contaminated: the paper's detector saw every person).

Test hook: ``RESULTS_ABORT_AFTER=<cell>@<stage prefix>`` (e.g. ``meso4-seed0-logit-kde@10``) stops
the process abruptly (exit 137, no clean-up) right after that stage of that cell finished, as a
kill would; used by the resumability test.
"""
