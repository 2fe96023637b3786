"""The warehouse: typed tables in DuckDB (embedded default) or PostgreSQL, loaded by upsert on ``id``.

columns.py (column types and Segment's naming rules, pure), targets.py (the Target seam and its
DuckDB / PostgreSQL / dlt implementations), events.py (the events warehouse: tracking messages and
Event Streams events into Segment's tables). The Twilio object source (objectsource/) loads through it.
"""
