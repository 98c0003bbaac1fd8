"""Card applications, one session class per AP (docs/architecture.md §9 names): JPKI, text, visual,
common; card detection; the PIN guard."""
