"""Exports: cases, grids and patrol tracks as files other offices can open."""
