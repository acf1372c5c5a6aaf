"""Seaborn figures used by the notebooks, one module per topic."""
