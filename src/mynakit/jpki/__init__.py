"""JPKI (公的個人認証) on the relying side: certificates, trust store, path validation, revocation.

Submodules are imported on demand (``from mynakit.jpki.certificates import parse_certificate``),
so importing this package stays cheap for callers that only need one part.
"""
