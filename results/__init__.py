"""The code behind ``parse_test_res.py``, one module per concern.

numbers    Summary (mean, population std, ci95), harmonic mean, metric text -> float
logs       one log file: final results, crashes, which logs a run folder holds
outcomes   one run folder: its value (result.json, else the logs) or why it has none
coop       CoOp's directory mode (DIR holds seed folders)
study      every run of an output root, placed in the study (spec first, then folders),
           read through study/run.py (folder names -> RunKey, dataset names, "is DIR an
           output root") and study/run_read.py (the record, its spec, every problem a note)
labels     row labels (init, vis init, tag) of the study tables
tables     grids (method x shots x dataset) and the text tables built from them
reference  --reference CSV files and their columns
render     plain / github / csv / latex rendering
plots      --plot: accuracy against shots

Standard library and ``tabulate`` only (``matplotlib`` for plots): no torch, no Dassl.
``parse_test_res.py`` re-exports the public names, so ``from parse_test_res import ...`` works.
"""
