"""The study report: ``python tools/report.py OUTPUT_ROOT --out REPORT_DIR``.

Modules, one concern each: ``sources`` (every import from the rest of the repository),
``runs`` (run folders, read through study/run_read.py), ``study`` (cells, pairing),
``stats`` (paired t interval),
``figures``, ``analyses`` (token statistics, t-SNE, loss curves), ``inventory``,
``document`` (HTML / Markdown rendering), ``build`` (the content), ``cli``.
"""
