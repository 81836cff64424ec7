"""Subcommands of the ``lrfit`` command line, one module each (see :mod:`lrfit.cli`)."""
