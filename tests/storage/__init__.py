"""Tests of :mod:`cellcensus._storage`."""
