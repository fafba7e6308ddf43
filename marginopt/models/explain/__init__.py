"""Explaining a change between two runs: each venue's margin change in pieces that add up to it
(``factors``: what is swapped; ``split``: sequential and Shapley; ``report``: the explanation)."""

from marginopt.models.explain.factors import Factor, Pair
from marginopt.models.explain.report import MAX_SHAPLEY, REL_TOL, Explanation, Side, Split, VenueExplanation, explain

__all__ = ["MAX_SHAPLEY", "REL_TOL", "Explanation", "Factor", "Pair", "Side", "Split", "VenueExplanation", "explain"]
