"""A local Twilio: the REST 2010-04-01 resources that the object source reads and the
SMS destination writes (Messages, Calls and their Feedback, Conferences,
Transcriptions, Addresses), stateful, with message and call status moving on a
clock, signed status callbacks and Event Streams events. docs/sandbox.md.

- ``behaviour.py``  per-account switches: status clock, outcome rules, injected 429/5xx
- ``service.py``    the domain operations the HTTP surface and the CLI call
- ``phones.py``     To/From validation (Twilio's error codes, test numbers), segments
- ``views.py``      rows → Twilio's JSON (RFC 2822 dates, strings where Twilio sends strings)
- ``lifecycle.py``  the status clock: queued → sending → sent → delivered …, callbacks, events
- ``seed.py``       reproducible realistic data (``eventstreams sandbox seed``)
- ``api.py``        the mounted surface
"""
