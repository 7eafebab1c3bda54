"""The drug library: formulary, care areas, entries and limits, with their file formats."""
