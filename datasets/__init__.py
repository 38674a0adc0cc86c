"""CoOp-family data sets as Dassl ``DatasetBase`` classes, registered under CoOp's names.

``import datasets.classes`` registers all fifteen (train.py does), so a config selects one by
``DATASET.NAME``. The shared code (split files, few-shot subsets and their cache, base/new
classes, input checks) is in ``datasets.fewshot``; it imports neither torch nor the toolbox, so
the tools that only read or write split files start in a fraction of a second.
"""
