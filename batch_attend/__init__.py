"""batch-attend: start a PlugChat attendance for every row of a leads spreadsheet.

The library's entry points: :func:`batch_attend.run.run_batch` with
:class:`batch_attend.settings.RunOptions`; :func:`batch_attend.plan.check_plan` for what a run
would send. The package root imports nothing, so that ``batch-attend --help`` answers at once.
"""

__version__ = "0.3.0"
