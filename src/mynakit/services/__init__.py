"""The services layer: storage, access records, credentials, the issuer link and HTTP pieces
shared by the MyKey platform and the eligibility service (docs/architecture.md, services).

Service cores (``mykey.core``, ...) import no web framework and no SQL driver; ``store``
modules wrap them with SQLAlchemy and ``http`` modules with FastAPI. Services never import the
emulator: the sandbox issuer is reached over HTTP through ``issuer_link``.
"""
