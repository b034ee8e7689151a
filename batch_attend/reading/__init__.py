"""Reading spreadsheets (start at :mod:`.files`). Kept empty, so that the workbook's child process
imports only what it needs."""
