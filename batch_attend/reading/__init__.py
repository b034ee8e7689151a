"""Reading spreadsheets (start at :mod:`.files`); empty, so the workbook's child imports little."""
