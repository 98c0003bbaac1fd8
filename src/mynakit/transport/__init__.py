"""Connections to cards: the two-method seam, PC/SC (pyscard), the in-process virtual card, and
the tracing decorator that redacts secrets."""
