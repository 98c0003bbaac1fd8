"""ISO/IEC 7816-4 in bytes only: APDUs, status words, BER-TLV, and the protocol object.

Nothing here does I/O; ``ApduProtocol`` talks to a ``Connection`` passed in.
"""
