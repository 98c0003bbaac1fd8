"""The virtual My Number card and the sandbox services around it (issuer, OCSP/CRL responder).

Submodules are imported on demand; nothing here talks to a real card or a real J-LIS service.
"""
