"""Card applications, one session class per AP (GLOSSARY.md names): JPKI, text, visual, common;
card detection; the PIN guard."""
