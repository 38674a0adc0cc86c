"""DAPT_Init: DAPT (ICCV 2023) with a choice of text-prompt initialisation.

Everything here except ``trainer.py`` is plain torch + clip and imports without the Dassl
toolbox. ``trainer.py`` is the thin Dassl adapter; importing it registers ``DAPT_Init`` in
Dassl's trainer registry::

    from trainers.dapt_init.config import add_dapt_init_config
    import trainers.dapt_init.trainer  # noqa: F401  (registers DAPT_Init)
"""
