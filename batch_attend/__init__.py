"""batch-attend: start a PlugChat attendance for every row of a leads spreadsheet.

The package root stays import-light so that ``batch-attend --help`` and ``--version`` answer at
once; the library entry points live in :mod:`batch_attend.runner` (``run_batch``) and are
re-exported lazily here.
"""

__version__ = "0.1.0"

__all__ = ["RunOptions", "__version__", "run_batch"]


def __getattr__(name: str):
    if name in ("run_batch", "RunOptions"):
        from batch_attend import runner

        return getattr(runner, name)
    raise AttributeError(name)
