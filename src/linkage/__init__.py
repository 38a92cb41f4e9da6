"""Cross-department record linkage (splink) and screening for children the registry does not list."""
