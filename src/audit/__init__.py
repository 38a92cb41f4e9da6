"""Audit: the fairness audit, its report, and the model card."""
