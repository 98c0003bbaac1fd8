"""Online insurance eligibility check (オンライン資格確認) sandbox service.

``codes`` holds the public code tables, ``models`` the typed records, requests and results,
``core`` the framework-free behaviour and the :class:`~.core.EligibilityClient` a terminal
calls. See docs/services.md §A.
"""
