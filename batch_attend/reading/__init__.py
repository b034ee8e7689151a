"""Reading spreadsheets: :mod:`.files` (``read_table``, standard input, what a file is),
:mod:`.csvfile`, :mod:`.workbook` (in a memory-capped child), :mod:`.table` (the header and the
data rows), :mod:`.headers` (which column holds what), :mod:`.handed_back` (a results file given
back as input), :mod:`.limits`. Kept empty, so that the workbook's child imports only what it
needs."""
