"""A Segment-compatible tracking API (docs/segment.md): sources with write keys, and the
``/v1/identify``, ``/v1/track``, ``/v1/page``, ``/v1/screen``, ``/v1/group``, ``/v1/alias``,
``/v1/batch`` and ``/v1/import`` endpoints that official Segment and RudderStack libraries post to.

- ``sources.py``  sources and write keys (domain: create, rotate, enable, authenticate)
- ``rules.py``    Segment's rules for a message (pure): identity, size, messageId, batch merge, clock skew
- ``api.py``      the mounted surface, in Segment's error shape
"""
