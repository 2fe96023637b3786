"""Plain rows as the store hands them out. No behaviour here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class AccountRow:
    sid: str
    parent_sid: str | None
    friendly_name: str
    status: str
    token_hash: str
    token_sealed: str
    date_created: str
    date_updated: str


@dataclass(slots=True)
class ApiKeyRow:
    sid: str
    account_sid: str
    friendly_name: str
    secret_hash: str
    date_created: str
    date_updated: str


@dataclass(slots=True)
class EventTypeRow:
    type: str
    schema_id: str
    owner_sid: str | None
    description: str
    status: str
    documentation_url: str | None
    segment_compatible: bool
    date_created: str
    date_updated: str


@dataclass(slots=True)
class SchemaVersionRow:
    schema_id: str
    version: int
    owner_sid: str | None
    document: str
    date_created: str


@dataclass(slots=True)
class SinkRow:
    sid: str
    account_sid: str
    description: str
    sink_type: str
    configuration_sealed: str
    status: str
    signing_secret_sealed: str
    date_created: str
    date_updated: str
    in_use: bool = False


@dataclass(slots=True)
class SubscriptionRow:
    sid: str
    account_sid: str
    sink_sid: str
    description: str
    date_created: str
    date_updated: str


@dataclass(slots=True)
class SubscribedEventRow:
    subscription_sid: str
    type: str
    schema_version: int
    account_sid: str


@dataclass(slots=True)
class PageQuery:
    """Keyset paging: ``after``/``before`` hold the sort key of the edge row.

    ``offset`` is used only when a client asks for Page=N without a token.
    """

    size: int
    after: tuple[Any, ...] | None = None
    before: tuple[Any, ...] | None = None
    offset: int = 0


@dataclass(slots=True)
class Page:
    items: list[Any] = field(default_factory=list)
    has_more: bool = False


@dataclass(slots=True)
class NewEvent:
    """A validated event ready to store; ``payload`` is the CloudEvent JSON, or '' when ``packed`` holds
    it (store/packing.py)."""

    id: str
    type: str
    schema_version: int | None
    time: str
    payload: str
    packed: bytes | None = None


@dataclass(slots=True)
class PublishOutcome:
    stored: list[str]
    duplicates: list[str]


@dataclass(slots=True)
class LeasedDelivery:
    id: int
    sink_sid: str
    account_sid: str
    event_seq: int
    attempts: int
    window_start: int  # epoch ms the delivery was created (published, tested or replayed)
    event_id: str
    type: str
    schema_version: int | None
    payload: str  # '' when packed: store/packing.unpack reads either
    lease: str
    batch: int = 0  # read from the log in this batch (id 0); 0: a row of the retry table (this id)
    packed: bytes | None = None


class Leased(list[LeasedDelivery]):
    """What a lease took, and (when it took nothing) when the sink's next retry or batch lease falls due
    (epoch ms, None for neither): an idle worker waits for that without asking again."""

    next_due: int | None = None


@dataclass(slots=True)
class DeliveryResult:
    """What became of one leased delivery.

    kind: ``delivered`` and ``skipped`` remove it; ``retry`` reschedules it at
    ``due_at``; ``dead`` moves it to the dead letters.
    """

    delivery: LeasedDelivery
    kind: str
    due_at: int | None = None
    code: int | None = None
    error: str | None = None


@dataclass(slots=True)
class LogEntry:
    account_sid: str
    sink_sid: str
    at: int
    outcome: str
    event_ids: list[str]
    attempt: int
    code: int | None = None
    http_status: int | None = None
    detail: str | None = None


@dataclass(slots=True)
class AlertRow:
    sid: str
    account_sid: str
    sink_sid: str
    error_code: int
    log_level: str
    alert_text: str
    http_status: int | None
    response_body: str | None
    request_url: str | None
    error_count: int
    created_at: int


@dataclass(slots=True)
class ErrorReport:
    """Delivery errors of one sink in one recorded chunk, for alert grouping."""

    account_sid: str
    sink_sid: str
    count: int
    code: int
    http_status: int | None
    detail: str | None
    request_url: str | None


@dataclass(slots=True)
class DeadLetterRow:
    id: int
    account_sid: str
    sink_sid: str
    event_seq: int
    event_id: str
    type: str
    attempts: int
    last_code: int | None
    last_error: str | None
    dead_at: int


@dataclass(slots=True)
class LogRow:
    id: int
    account_sid: str
    sink_sid: str
    at: int
    outcome: str
    event_count: int
    event_ids: str
    attempt: int
    code: int | None
    http_status: int | None
    detail: str | None


# -- the Twilio sandbox (store/sql/*/005_sandbox.sql); dates are ISO 8601 UTC text


@dataclass(slots=True)
class SandboxMessageRow:
    sid: str
    account_sid: str
    messaging_service_sid: str | None
    direction: str
    from_number: str
    to_number: str
    body: str
    status: str
    num_segments: int
    num_media: int
    price: str | None
    price_unit: str
    error_code: int | None
    error_message: str | None
    status_callback: str | None
    outcome: str | None
    next_step_at: float | None
    date_created: str
    date_updated: str
    date_sent: str | None


@dataclass(slots=True)
class SandboxCallRow:
    sid: str
    account_sid: str
    parent_call_sid: str | None
    to_number: str
    to_formatted: str
    from_number: str
    from_formatted: str
    phone_number_sid: str | None
    status: str
    start_time: str | None
    end_time: str | None
    duration: int | None
    price: str | None
    price_unit: str
    direction: str
    answered_by: str | None
    forwarded_from: str | None
    group_sid: str | None
    caller_name: str | None
    queue_time: int
    trunk_sid: str | None
    status_callback: str | None
    status_callback_events: str | None
    outcome: str | None
    next_step_at: float | None
    date_created: str
    date_updated: str


@dataclass(slots=True)
class SandboxFeedbackRow:
    call_sid: str
    account_sid: str
    quality_score: int
    issues: str  # JSON array of issue names
    date_created: str
    date_updated: str


@dataclass(slots=True)
class SandboxConferenceRow:
    sid: str
    account_sid: str
    friendly_name: str
    region: str
    status: str
    reason_conference_ended: str | None
    call_sid_ending_conference: str | None
    date_created: str
    date_updated: str


@dataclass(slots=True)
class SandboxTranscriptionRow:
    sid: str
    account_sid: str
    recording_sid: str
    status: str
    transcription_text: str | None
    type: str
    duration: int | None
    price: str | None
    price_unit: str
    date_created: str
    date_updated: str


@dataclass(slots=True)
class SandboxAddressRow:
    sid: str
    account_sid: str
    customer_name: str
    friendly_name: str | None
    street: str
    street_secondary: str | None
    city: str
    region: str
    postal_code: str
    iso_country: str
    emergency_enabled: bool
    validated: bool
    verified: bool
    date_created: str
    date_updated: str


# -- the tracking API (store/sql/*/006_tracking.sql)


@dataclass(slots=True)
class TrackingSourceRow:
    sid: str
    account_sid: str
    name: str
    key_hash: str
    key_sealed: str
    enabled: bool
    rate_limit: int
    date_created: str
    date_updated: str


@dataclass(slots=True)
class TrackingMessageRow:
    """One message as received: ``status`` accepted or rejected (``reason`` says why)."""

    account_sid: str
    source_sid: str
    message_id: str
    type: str | None
    status: str
    reason: str | None
    received_at: str
    payload: str
    seq: int | None = None


@dataclass(slots=True)
class SmsRow:
    """One text of a twilio-sms sink (the ledger, store.sms): claimed, then sent or rejected."""

    account_sid: str
    sink_sid: str
    message_id: str  # the tracking message's messageId
    recipient: str  # E.164
    event_id: str
    profile_id: str | None
    user_id: str | None
    anonymous_id: str | None
    rate_key: str  # what the per-profile rate counts by: the profile id, else the recipient
    message_sid: str | None
    status: str  # claimed | rejected | Twilio's message status
    error_code: int | None
    claimed_ms: int
    date_created: str
    date_updated: str


@dataclass(slots=True)
class ObjectSourceRow:
    """A Twilio object source (objectsource/): what to sync from which Twilio account into which schema.
    ``key_sid`` is an API key's SID when the credential is a key (else the auth token is used);
    ``secret_sealed`` is the token or key secret, Fernet-sealed. ``collections`` is comma-separated."""

    sid: str
    account_sid: str
    friendly_name: str
    schema_name: str
    twilio_account_sid: str
    key_sid: str | None
    secret_sealed: str
    base_url: str
    start_date: str | None
    collections: str
    schedule: str
    lookback_seconds: int
    include_subaccounts: bool
    enabled: bool
    full_sync_requested: bool
    full_requested_at: float | None
    next_run_at: float | None
    lease_owner: str | None
    lease_until: float | None
    last_error: str | None
    date_created: str
    date_updated: str


@dataclass(slots=True)
class ObjectSourceStateRow:
    """Where one (source, Twilio account, collection) stands: ``cursor`` the newest value loaded; an
    unfinished pass keeps ``resume_uri`` (its next page), ``pass_kind`` (full/incremental), ``pass_cursor``
    (the newest value the pass has seen so far) and ``pass_lower`` (its lower bound, ISO UTC)."""

    source_sid: str
    twilio_account_sid: str
    collection: str
    cursor: str | None
    resume_uri: str | None
    pass_kind: str | None
    pass_cursor: str | None
    pass_lower: str | None
    date_updated: str


@dataclass(slots=True)
class ObjectSourceRunRow:
    sid: str
    account_sid: str
    source_sid: str
    kind: str
    trigger: str
    status: str
    error: str | None
    date_started: str
    date_finished: str | None


@dataclass(slots=True)
class RunCollectionRow:
    run_sid: str
    twilio_account_sid: str
    collection: str
    status: str
    rows_read: int
    rows_upserted: int
    duration: float
    cursor: str | None
    error: str | None
