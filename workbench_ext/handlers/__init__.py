"""REST handlers, one module per resource; each ends with its URL table."""
