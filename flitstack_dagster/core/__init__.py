"""What every stage needs and nothing in the flow is below: errors for people, settings, DuckDB, safe text."""
