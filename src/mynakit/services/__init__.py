"""Services on top of the card and JPKI layers: the shared layer (store, audit, auth, issuer
link) and the services built on it (MyKey platform, eligibility). See docs/architecture.md."""
