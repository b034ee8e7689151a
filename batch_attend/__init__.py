"""batch-attend: start a PlugChat attendance for every row of a leads spreadsheet.

The package root stays import-light so that ``batch-attend --help`` and ``--version`` answer at
once; the library entry points live in :mod:`batch_attend.run` (``run_batch``) and
:mod:`batch_attend.settings` (``RunOptions``) and are re-exported lazily here.
"""

__version__ = "0.2.0"

__all__ = ["RunOptions", "__version__", "run_batch"]


def __getattr__(name: str):
    if name == "run_batch":
        from batch_attend.run import run_batch

        return run_batch
    if name == "RunOptions":
        from batch_attend.settings import RunOptions

        return RunOptions
    raise AttributeError(name)
