"""Delivery: what reaches child directors — snapshot scoring and SHAP, watchlists, services, capacity."""
