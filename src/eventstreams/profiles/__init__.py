"""Profiles and identity resolution: every tracking message resolves into one profile per person
(docs/segment.md)."""
