"""Ranking: features, rankers (weighted formula, LightGBM), training, offline evaluation.

A public contract for ML engineers: this package never imports Ray.
"""

__all__: list[str] = []
