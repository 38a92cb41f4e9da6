"""As-of features and outcome labels, computed in DuckDB, described by one feature catalogue."""
