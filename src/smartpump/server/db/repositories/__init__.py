"""All SQL lives here: one module per aggregate; services call these, routes never do."""
