"""The parts of tools/prepare_data.py: the table of data sets and their sources (specs), the
per-data-set report (check) and fetching, verifying and laying out archives (download).
prepare_data.py is the command line; these modules import no command."""
