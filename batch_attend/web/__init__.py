"""``batch-attend serve``: the whole job on a web page, for people who never open a terminal.

The page calls the same library as the command line (:func:`batch_attend.runner.run_batch`), so a
spreadsheet gives the same results either way. :mod:`.app` is the web server (key, cross-site
protection, routes), :mod:`.runs` the runs kept under the data directory, :mod:`.preview` what
the page shows before a run starts.
"""
