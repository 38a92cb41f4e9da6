"""Data in: the contract, ingest and validation, pseudonymisation, and the synthetic generator."""
