"""The Twilio object source: incremental sync of Twilio's objects (messages, calls, conferences,
transcriptions, addresses, call feedback) into a warehouse (docs/warehouse.md)."""
