"""Trainers of this repository. ``trainers.dapt_init`` is the drop-in unit."""
