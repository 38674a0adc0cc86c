"""The study report: ``python tools/report.py OUTPUT_ROOT --out REPORT_DIR``.

Modules, one concern each: ``runs`` (run folders, read through study/run_read.py), ``study``
(factors, cells, pairing), ``stats`` (paired t interval, Holm, the seed sign-flip test),
``figures``, ``analyses`` (token statistics, t-SNE, loss curves, from analysis/),
``inventory``, ``document`` (HTML / Markdown rendering), ``output`` (the --out folder, atomic
writes), ``build`` (the content), ``cli``. They import the packages below them (results,
study, analysis, the drop-in unit) directly; nothing imports tools/ or a script.
"""
