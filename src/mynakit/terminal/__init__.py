"""The counter terminal: the flow on card events (``machine``), its words (``screens``), the
runner that feeds it from a reader (``runner``) and the kiosk page (``kiosk``)."""
