"""Protection system -> the service a caseworker should consider bringing (Chinese and English).

Routing follows the reasons shown, never raw SHAP sums (which would count exposure and
background features): a child's systems are the systems of its shown reasons, in reason
order without repeats (the first reason's system is the primary; a reason that does not
route, a casework concern of any topic, adds none), and it gets one service per system, primary first ("；" / "; " joined). A child with no shown reason gets the general
review only, so no child is sent to benefit recertification unless a benefit reason is
shown. An already-out child gets one service per net it has left.

The services, their systems and their wording are the service vocabulary
(`src.data.service_vocabulary`, one service per protection system of the 2025 State Council
opinion on children in difficult circumstances, catalogue.SYSTEMS, plus the general review),
the same codes the `service_providers` directory offers and the referral plan matches
(`src.delivery.matching`). The service suggests; it never decides: the watchlist header says
so, and the caseworker records the decision in `review`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from src.data import service_vocabulary as vocabulary
from src.features import catalogue


def suggested_service(system: str, language: str) -> str:
    """The service for one protection system in 'zh' or 'en'; unknown or empty -> general review."""
    return vocabulary.wording(vocabulary.service_of(system).code, language)


SEPARATOR = {"zh": "；", "en": "; "}


def systems_from_reasons(reason_features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of shown reason features (n x k, '' = empty slot): '|'-joined systems in reason
    order without repeats, and the primary system ('static' when no reason is shown)."""
    system_of = {entry.name: entry.system for entry in catalogue.CATALOGUE if entry.routes}
    joined, primary = [], []
    for row in reason_features:
        systems = list(dict.fromkeys(system_of[name] for name in row if name in system_of))
        joined.append("|".join(systems))
        primary.append(systems[0] if systems else "static")
    return np.array(joined, dtype=object), np.array(primary, dtype=object)


def services_for(systems: pd.Series, language: str) -> pd.Series:
    """One service per '|'-joined system, in that order; no system -> the general review."""
    def join(value: str) -> str:
        names = [s for s in str(value).split("|") if s] or ["static"]
        return SEPARATOR[language].join(dict.fromkeys(suggested_service(s, language) for s in names))

    mapping = {value: join(value) for value in pd.unique(systems.fillna(""))}
    return systems.fillna("").map(mapping)


def referred_codes(systems: str) -> list[str]:
    """The service codes a child is referred for: one per '|'-joined system, in that order
    (the primary first), without the general review (the child director's own visit)."""
    codes = (vocabulary.service_of(s) for s in str(systems).split("|") if s)
    return list(dict.fromkeys(c.code for c in codes if c.referred))
