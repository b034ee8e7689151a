"""``batch-attend serve``: the whole job on a web page, for people who never open a terminal,
through the same library as the command line (:func:`batch_attend.run.run_batch`)."""
