"""``eventstreams sandbox seed``: a year of realistic Twilio data, reproducible from a seed.

``generate`` is a pure function of (account SIDs, counts, seed, now): the same inputs give the same
rows, byte for byte, so a benchmark or a test can rebuild the same data set on a fresh database.
``seed`` resolves the accounts (the first account, created as ``serve`` does, plus new subaccounts),
generates, and bulk-inserts through ``store.sandbox.insert_many``.

Every seeded row is final (``next_step_at`` NULL): the status clock never touches it. Late status
changes are modelled the way an incremental sync sees them: a share of rows has ``date_updated``
days after ``date_sent``/``end_time``.

Speed (see docs/benchmarks.md): the per-row work is a few ``random()`` draws, table lookups and one
f-string per SID and date. What would be slow per row is done once per distinct value instead:
bodies come from a pool whose segment counts are computed once, national formats of phone numbers
from one template per layout, ISO dates from a per-day cache.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import phonenumbers

from .. import clock
from ..ids import normalize_sid
from ..store.records import (
    AccountRow,
    SandboxAddressRow,
    SandboxCallRow,
    SandboxConferenceRow,
    SandboxFeedbackRow,
    SandboxMessageRow,
    SandboxTranscriptionRow,
)
from ..store.repos import sandbox as kinds
from . import lifecycle, phones
from .service import FEEDBACK_ISSUES, parse_date

if TYPE_CHECKING:
    from ..runtime import Runtime

DAY = 86_400
YEAR_DAYS = 365
# A seeded SID is prefix + 12 hex digits of time field + 20 random hex digits, like ids.new_sid, but its
# time field carries this marker in the top nibble. new_sid's is the 48-bit millisecond clock, whose top
# nibble stays 0 until the year 2527, so a seeded SID can never equal an API-created one; within one
# second seeded rows still sort by their own millisecond, and (date_created, sid) order stays sane.
SEEDED_MARK = 0xE << 44
SEEDED_SIDS = "e"  # the first hex digit after the prefix of every seeded SID

MESSAGE_ERRORS = lifecycle.ERROR_MESSAGES  # the texts the status clock gives the same codes
_UNDELIVERED = (30003, 30005, 30006, 30007)
SMS_PRICE = float(lifecycle.MESSAGE_PRICE)  # USD per segment, both directions (US long code)
MMS_PRICE = 0.0200  # USD per message with media
CALL_RATE_INBOUND = 0.0085  # USD per started minute
CALL_RATE_US = float(lifecycle.CALL_PRICE)
CALL_RATE_INTL = 0.0550
TRANSCRIPTION_RATE = 0.05  # USD per started minute

# -- what the data looks like (shares, tables)

# Traffic by UTC hour: North American business hours dominate.
_HOUR_WEIGHTS = (3, 2, 2, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 8, 10, 10, 10, 10, 10, 9, 9, 8, 6, 4)
_HOURS = tuple(h for h, w in enumerate(_HOUR_WEIGHTS) for _ in range(w))

_FIRST = ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
          "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen",
          "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Sandra", "Priya", "Ana", "Wei", "Fatima", "Lukas",
          "Chloé", "Oliver", "Amelia", "Hiroshi", "Sofia", "Mateo", "Aisha", "Noah", "Emma")  # fmt: skip
_LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
         "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
         "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Patel", "Nguyen", "Kim", "Müller",
         "Schmidt", "Dubois", "Rossi", "Silva", "Tanaka", "Singh", "O'Brien", "Kowalski", "Novak")  # fmt: skip
_BRANDS = ("Acme", "Globex", "Initech", "Umbrella Health", "Stark Dental", "Wayne Realty", "Hooli", "Vandelay",
           "Pied Piper", "Soylent Foods", "Cyberdyne", "Wonka Sweets", "Oceanic Air", "Gringotts Bank", "Bluth Co",
           "Dunder Mifflin", "Monarch Clinics", "Tyrell Motors", "Prestige Cleaners", "Nakatomi")  # fmt: skip
_DOMAINS = ("acme.example", "globex.example", "shop.example.com", "trk.example.net", "go.example.org")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "tomorrow", "today")
_SENTENCES = (
    "Our spring collection is here, with new arrivals every week.",
    "Members get free shipping on every order over $35.",
    "Reply STOP to unsubscribe, HELP for help. Msg & data rates may apply.",
    "Bring a friend and you both get 15% off your next visit.",
    "Your feedback helps us improve: tell us how we did in one word.",
    "Store hours this weekend are 9am to 6pm.",
    "We have updated our privacy policy; read the summary on our website.",
    "Tickets for the summer event go on sale Friday at 10am.",
    "Please have your ID and insurance card ready at check-in.",
    "Parking is available behind the building at no charge.",
    "If you need to cancel, please let us know at least 24 hours in advance.",
    "This offer cannot be combined with other promotions.",
)
_VOICEMAIL = (
    "Hi, this is a message for the billing department.", "I'm calling about my order from last week.",
    "Could you please call me back when you get a chance?", "My number is the one I'm calling from.",
    "I'd like to reschedule my appointment to next Tuesday if possible.", "Thanks, bye.",
    "The package arrived damaged and I would like a replacement.", "I have a question about my last invoice.",
    "We spoke yesterday about the contract renewal.", "Please call me after five.",
    "Hello, I'm returning your call.", "It's not urgent, but I'd appreciate a call back today.",
)  # fmt: skip
_INBOUND = (
    "Yes", "YES", "Y", "C", "R", "STOP", "HELP", "Thanks!", "Thank you", "Ok", "OK see you then", "👍",
    "Can I move it to Tuesday?", "What time do you close today?", "Wrong number", "Who is this?",
    "Is the order still arriving today? I need it before the weekend.", "No", "Sí, gracias",
    "Running 10 min late, sorry!", "Can you send me the address again please", "😂😂", "Love it ❤️",
    "Hi, I never received my code, can you resend it?", "UNSTOP", "Please call me back",
)  # fmt: skip

# Phone numbers: (country share, prefixes, digits after the prefix). Every form is valid per libphonenumber.
_COUNTRIES = (
    (58, ("+1212", "+1213", "+1305", "+1312", "+1415", "+1512", "+1617", "+1646", "+1702", "+1713", "+1720",
          "+1808", "+1206", "+1404", "+1503", "+1602", "+1615", "+1718", "+1917", "+1972"), 7),
    (8, ("+1416", "+1604", "+1514", "+1403", "+1613", "+1647", "+1778"), 7),
    (10, ("+4474", "+4475", "+4478"), 8),
    (6, ("+49151", "+49160", "+49170", "+49172", "+49176", "+49178"), 8),
    (5, ("+3361", "+3362", "+3364", "+3366", "+3367", "+3375", "+3377"), 7),
    (5, ("+55119", "+55219", "+55319"), 8),
    (4, ("+917", "+918", "+919"), 9),
    (2, ("+6140", "+6141", "+6142"), 7),
    (2, ("+5255", "+5233"), 8),
)  # fmt: skip
_COUNTRY_TABLE = tuple(c for c in _COUNTRIES for _ in range(c[0]))
_TOLL_FREE = ("+1833", "+1844", "+1855", "+1877", "+1888")

_MESSAGE_DIRECTIONS = ((22, "inbound"), (70, "outbound-api"), (6, "outbound-reply"), (2, "outbound-call"))
_CALL_STATUSES = ((75, "completed"), (6, "busy"), (11, "no-answer"), (4, "failed"), (4, "canceled"))
_CHILD_STATUSES = ((70, "completed"), (8, "busy"), (15, "no-answer"), (3, "failed"), (4, "canceled"))
_ANSWERED_BY = ((70, "human"), (18, "machine_start"), (3, "machine_end_beep"), (1, "fax"), (8, "unknown"))
_CONFERENCE_ENDS = ((60, "last-participant-left"), (24, "participant-with-end-conference-on-exit-left"),
                    (10, "conference-ended-via-api"), (4, "last-participant-kicked"),
                    (2, "participant-with-end-conference-on-exit-kicked"))  # fmt: skip
_REGIONS = ((70, "us1"), (8, "us2"), (8, "ie1"), (5, "de1"), (3, "sg1"), (2, "jp1"), (2, "au1"), (2, "br1"))
_QUALITY = ((5, 1), (10, 2), (15, 3), (30, 4), (40, 5))
_CHILD_SHARE = 0.15  # calls that are <Dial> legs of another call
FEEDBACK_SHARE = 0.15  # of completed calls
CONFERENCES_PER_CALL = 1 / 20
TRANSCRIPTIONS_PER_CALL = 1 / 10

# Addresses: (iso, city, region, postal code pattern with # for a digit, street names, street format)
_PLACES = (
    ("US", "New York", "NY", "100##", ("Broadway", "Madison Ave", "W 34th St", "Lexington Ave"), "{n} {s}"),
    ("US", "San Francisco", "CA", "941##", ("Market St", "Mission St", "Valencia St", "Howard St"), "{n} {s}"),
    ("US", "Austin", "TX", "787##", ("Congress Ave", "S Lamar Blvd", "E 6th St"), "{n} {s}"),
    ("US", "Chicago", "IL", "606##", ("N Michigan Ave", "W Madison St", "N Clark St"), "{n} {s}"),
    ("US", "Seattle", "WA", "981##", ("Pike St", "1st Ave", "Westlake Ave N"), "{n} {s}"),
    ("US", "Denver", "CO", "802##", ("Larimer St", "Blake St", "E Colfax Ave"), "{n} {s}"),
    ("US", "Miami", "FL", "331##", ("Brickell Ave", "Collins Ave", "NW 2nd Ave"), "{n} {s}"),
    ("CA", "Toronto", "ON", "M5V 3L9", ("King St W", "Queen St W", "Spadina Ave"), "{n} {s}"),
    ("CA", "Vancouver", "BC", "V6B 1A1", ("Granville St", "Robson St"), "{n} {s}"),
    ("GB", "London", "Greater London", "EC1V 9HX", ("Old Street", "Baker Street", "Kingsland Road"), "{n} {s}"),
    ("GB", "Manchester", "Greater Manchester", "M1 1AE", ("Deansgate", "Oldham Street"), "{n} {s}"),
    ("DE", "Berlin", "Berlin", "101##", ("Friedrichstraße", "Torstraße", "Kastanienallee"), "{s} {n}"),
    ("DE", "München", "Bayern", "803##", ("Leopoldstraße", "Sendlinger Straße"), "{s} {n}"),
    ("FR", "Paris", "Île-de-France", "750##", ("Rue de Rivoli", "Boulevard Voltaire", "Rue Oberkampf"), "{n} {s}"),
    ("FR", "Lyon", "Auvergne-Rhône-Alpes", "6900#", ("Rue de la République", "Cours Lafayette"), "{n} {s}"),
    ("AU", "Sydney", "NSW", "2000", ("George St", "Pitt St", "Oxford St"), "{n} {s}"),
    ("BR", "São Paulo", "SP", "01310-###", ("Avenida Paulista", "Rua Augusta"), "{s}, {n}"),
    ("JP", "Tokyo", "Tokyo", "100-000#", ("Marunouchi 1-chome", "Ginza 4-chome"), "{s} {n}"),
    ("ES", "Madrid", "Madrid", "280##", ("Calle de Alcalá", "Gran Vía"), "{s} {n}"),
    ("NL", "Amsterdam", "Noord-Holland", "101# AB", ("Damrak", "Prinsengracht"), "{s} {n}"),
)  # fmt: skip
_SECONDARY = ("Suite 100", "Suite 210", "Floor 3", "Apt 4B", "Unit 12", "Building C", "2nd Floor")
_ADDRESS_NAMES = ("Headquarters", "Main office", "Warehouse", "Branch", "Emergency - Floor 2", "Store", "Lab")
_CONFERENCE_NAMES = ("Support Room {n}", "Sales bridge {n}", "standup-{d}", "incident-{n}", "Team {n} weekly",
                     "conf-{h}")  # fmt: skip


def _table(weighted: Sequence[tuple[int, Any]]) -> tuple[Any, ...]:
    """A lookup table in which each value appears as often as its weight: ``t[int(random() * len(t))]``
    draws by weight with one ``random()`` call and an index."""
    return tuple(v for w, v in weighted for _ in range(w))


_Iso = Callable[[int], str]


def _iso_formatter() -> _Iso:
    """clock.iso for whole seconds, several times faster: each day's date is formatted once, the
    86,400 times of day up front (a closure: cheaper to call than a method)."""
    days: dict[int, str] = {}
    times = [f"{h:02d}:{m:02d}:{s:02d}Z" for h in range(24) for m in range(60) for s in range(60)]

    def iso(ts: int) -> str:
        d, s = divmod(ts, DAY)
        day = days.get(d)
        if day is None:
            day = days[d] = time.strftime("%Y-%m-%dT", time.gmtime(d * DAY))
        return day + times[s]

    return iso


def _sid(prefix: str, ts: int, rng: random.Random) -> str:
    return f"{prefix}{SEEDED_MARK | (ts * 1000 + int(rng.random() * 1000)):012x}{rng.getrandbits(80):020x}"


def _digits(rng: random.Random, n: int) -> str:
    return f"{int(rng.random() * 10**n):0{n}d}"


def _number(rng: random.Random) -> str:
    """A valid mobile or local number from a weighted mix of countries."""
    _, prefixes, n = _COUNTRY_TABLE[int(rng.random() * len(_COUNTRY_TABLE))]
    prefix = prefixes[int(rng.random() * len(prefixes))]
    if prefix.startswith("+1"):  # NANP exchange codes start 2-9
        return f"{prefix}{2 + int(rng.random() * 8)}{_digits(rng, n - 1)}"
    return prefix + _digits(rng, n)


def _times(rng: random.Random, n: int, now: int) -> list[int]:
    """``n`` instants in the year before ``now``, sorted: busier recently (a growing business), on
    weekdays and in North American business hours."""
    r = rng.random
    hours, nh = _HOURS, len(_HOURS)
    today = now // DAY
    out = []
    for _ in range(n):
        while True:
            day = today - int(YEAR_DAYS * r() ** 1.3)
            if (day + 3) % 7 < 5 or r() < 0.6:  # 1970-01-01 was a Thursday; weekends are quieter
                break
        ts = day * DAY + hours[int(r() * nh)] * 3600 + int(r() * 3600)
        out.append(ts if ts <= now else ts - DAY)  # today's later hours have not happened yet
    out.sort()
    return out


def _price(amount: float) -> str:
    """Twilio's price strings: negative (a charge), five decimals."""
    return f"{-amount:.5f}"


# -- per-account context


@dataclass
class _World:
    """What one account owns (its numbers, a messaging service) and whom it talks to."""

    sid: str
    numbers: tuple[str, ...]
    number_sids: dict[str, str]
    service_sid: str
    customers: tuple[str, ...]  # messages use a prefix of it, calls another: each independent of the other's count


def _world(sid: str, index: int, seed: int, customers: int, now: int) -> _World:
    rng = random.Random(f"{seed}/account/{index}")
    first = now - YEAR_DAYS * DAY
    local = _COUNTRIES[0][1]
    owned = [f"{local[int(rng.random() * len(local))]}{2 + int(rng.random() * 8)}{_digits(rng, 6)}"
             for _ in range(2 + int(rng.random() * 3))]  # fmt: skip
    owned.append(f"{_TOLL_FREE[int(rng.random() * len(_TOLL_FREE))]}{2 + int(rng.random() * 8)}{_digits(rng, 6)}")
    if rng.random() < 0.5:
        owned.append(f"+447{int(4 + rng.random() * 2)}{_digits(rng, 8)}")
    owned = list(dict.fromkeys(owned))
    return _World(
        sid=sid,
        numbers=tuple(owned),
        number_sids={n: _sid("PN", first, rng) for n in owned},
        service_sid=_sid("MG", first, rng),
        customers=tuple(_number(rng) for _ in range(customers)),
    )


def _weights(n: int) -> tuple[int, ...]:
    """Index table spreading rows over ``n`` accounts: the main account 40 %, subaccounts the rest,
    each less than the one before (1, 1/2, 1/3 …)."""
    if n == 1:
        return (0,)
    subs = [1 / k for k in range(1, n)]
    total = sum(subs)
    weighted = [(400, 0)] + [(max(1, round(600 * w / total)), i + 1) for i, w in enumerate(subs)]
    return _table(weighted)


# -- bodies


def _bodies(rng: random.Random, size: int) -> tuple[tuple[str, int], ...]:
    """Outbound bodies with their segment counts: codes, notifications, reminders, marketing (some
    long, multi-segment), some with GSM extension characters, some UCS-2 (accents outside GSM,
    Greek, Cyrillic, Japanese, emoji)."""
    r = rng.random

    def pick(seq: Sequence[str]) -> str:
        return seq[int(r() * len(seq))]

    out = []
    for _ in range(size):
        brand, first, dom = pick(_BRANDS), pick(_FIRST), pick(_DOMAINS)
        code, order = _digits(rng, 6), _digits(rng, 7)
        u = r()
        if u < 0.25:
            body = pick((
                f"Your {brand} verification code is {code}. It expires in 10 minutes.",
                f"{code} is your {brand} code. Don't share it with anyone.",
                f"{brand}: use code {code} to sign in. If you didn't request it, ignore this message.",
            ))  # fmt: skip
        elif u < 0.45:
            body = pick((
                f"{brand}: your order #{order} has shipped and arrives {pick(_WEEKDAYS)}. "
                f"Track it at https://{dom}/t/{code}",
                f"Your {brand} order #{order} is ready for pickup.",
                f"{brand}: a payment of ${int(r() * 500)}.{_digits(rng, 2)} was received. Thank you!",
            ))  # fmt: skip
        elif u < 0.62:
            body = (
                f"Reminder: your appointment with {brand} is on {pick(_WEEKDAYS)} at {1 + int(r() * 11)}:"
                f"{pick(('00', '15', '30', '45'))}{pick(('am', 'pm'))}. Reply C to confirm or R to reschedule."
            )
        elif u < 0.72:
            body = f"Hi {first}, thanks for contacting {brand} support. An agent will reply shortly."
        elif u < 0.84:  # marketing: one to many segments
            n = 1 + int(r() ** 2 * 12)
            body = f"{brand}: " + " ".join(pick(_SENTENCES) for _ in range(n))
        elif u < 0.88:  # GSM extension characters cost two septets
            body = f"{brand}: your balance is €{int(r() * 900)}.{_digits(rng, 2)} [ref {order}]. Pay at {dom}/pay"
        elif u < 0.93:  # emoji: UCS-2
            body = pick((
                f"🎉 {first}, your {brand} reward is ready! Show this text in store for 20% off 🛍️",
                f"{brand}: your table for {2 + int(r() * 6)} is confirmed ✅ See you soon!",
                f"Happy birthday {first}! 🎂 A treat from {brand} is waiting for you.",
            ))  # fmt: skip
        elif u < 0.97:  # other scripts: UCS-2
            body = pick((
                f"Ο κωδικός σας {brand} είναι {code}.",  # noqa: RUF001 - Greek, on purpose
                f"Ваш код подтверждения {brand}: {code}",
                f"{brand} 認証コード: {code}（10分間有効）",  # noqa: RUF001 - Japanese punctuation
                f"Votre code {brand} est {code}. Il expire dans 10 minutes. Ne le partagez pas, s'il vous plaît.",
                f"Olá {first}! Sua encomenda #{order} está a caminho. Acompanhe em https://{dom}/t/{code}",
            ))  # fmt: skip
        else:  # long newsletters, up to Twilio's 1,600 characters
            parts = [f"{brand} monthly update for {first}:"]
            target = 400 + int(r() * 1150)
            while sum(len(p) + 1 for p in parts) < target:
                parts.append(pick(_SENTENCES))
            body = " ".join(parts)[: phones.MAX_BODY]
        out.append((body, phones.segments(body)))
    return tuple(out)


def _inbound_bodies() -> tuple[tuple[str, int], ...]:
    return tuple((b, phones.segments(b)) for b in _INBOUND)


# -- generation

COLLECTIONS = (kinds.MESSAGE, kinds.CALL, kinds.FEEDBACK, kinds.CONFERENCE, kinds.TRANSCRIPTION, kinds.ADDRESS)


@dataclass
class Dataset:
    messages: list[SandboxMessageRow] = field(default_factory=list)
    calls: list[SandboxCallRow] = field(default_factory=list)
    feedback: list[SandboxFeedbackRow] = field(default_factory=list)
    conferences: list[SandboxConferenceRow] = field(default_factory=list)
    transcriptions: list[SandboxTranscriptionRow] = field(default_factory=list)
    addresses: list[SandboxAddressRow] = field(default_factory=list)

    def collections(self) -> list[tuple[kinds.Kind, Sequence[Any]]]:
        """Every collection with its kind, in insertion order (calls before their feedback)."""
        return list(zip(COLLECTIONS, (self.messages, self.calls, self.feedback, self.conferences,
                                      self.transcriptions, self.addresses), strict=True))  # fmt: skip

    def rows(self) -> int:
        return sum(len(rows) for _, rows in self.collections())

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows per account SID and collection (table name without ``sandbox_``)."""
        out: dict[str, dict[str, int]] = {}
        for kind, rows in self.collections():
            for account, n in Counter(r.account_sid for r in rows).items():
                out.setdefault(account, {})[kind.name] = n
        return out


def generate(account_sids: Sequence[str], messages: int, calls: int, seed: int, now: float) -> Dataset:
    """The data set for these accounts (the first is the main one, ~40 % of the rows), spread over the
    365 days before ``now``. Each collection draws from its own stream, ``random.Random(f"{seed}/messages")``
    and so on (so changing ``calls`` leaves the messages as they were)."""
    if not account_sids:
        raise ValueError("at least one account")
    end = int(now)
    # about five messages and two calls per customer
    texted, called = (max(50, min(20_000, n // (k * len(account_sids)))) for n, k in ((messages, 5), (calls, 2)))
    worlds = [_world(sid, i, seed, max(texted, called), end) for i, sid in enumerate(account_sids)]
    spread = tuple(worlds[i] for i in _weights(len(worlds)))
    iso = _iso_formatter()
    data = Dataset()
    data.messages = _messages(random.Random(f"{seed}/messages"), spread, texted, messages, end, iso)
    data.calls, completed = _calls(random.Random(f"{seed}/calls"), spread, called, calls, end, iso)
    data.feedback = _feedback(random.Random(f"{seed}/feedback"), completed, end, iso)
    data.conferences = _conferences(
        random.Random(f"{seed}/conferences"), completed, int(calls * CONFERENCES_PER_CALL), end, iso
    )
    data.transcriptions = _transcriptions(
        random.Random(f"{seed}/transcriptions"), completed, int(calls * TRANSCRIPTIONS_PER_CALL), end, iso
    )
    data.addresses = _addresses(random.Random(f"{seed}/addresses"), account_sids, end, iso)
    return data


def _messages(
    rng: random.Random, spread: Sequence[_World], customers: int, n: int, now: int, iso: _Iso
) -> list[SandboxMessageRow]:
    r, bits = rng.random, rng.getrandbits
    out_pool = _bodies(random.Random(f"{rng.random()}/bodies"), min(4096, max(64, n // 8)))
    in_pool = _inbound_bodies()
    directions = _table(_MESSAGE_DIRECTIONS)
    nd = len(directions)
    sms = [_price(SMS_PRICE * s) for s in range(phones.MAX_BODY // 67 + 2)]  # up to 24 UCS-2 segments
    mms = _price(MMS_PRICE)
    na, no, ni = len(spread), len(out_pool), len(in_pool)
    mark = SEEDED_MARK
    rows = []
    for ts in _times(rng, n, now):
        w = spread[int(r() * na)]
        customer = w.customers[int(r() * customers)]
        own = w.numbers[int(r() * len(w.numbers))]
        direction = directions[int(r() * nd)]
        service = None
        code = None
        if direction == "inbound":
            body, segments = in_pool[int(r() * ni)]
            media = (1 if r() < 0.8 else 2) if r() < 0.08 else 0
            from_, to, status, outcome = customer, own, "received", None
            sent = ts
            updated = ts + (1 if r() < 0.5 else 0)
            price: str | None = mms if media else sms[segments]
        else:
            body, segments = out_pool[int(r() * no)]
            media = 1 if r() < 0.03 else 0
            from_, to = own, customer
            if direction == "outbound-api" and r() < 0.4:
                service = w.service_sid
            v = r()
            price = mms if media else sms[segments]
            sent = ts + 1 + int(r() * 4)
            if v < 0.88:
                status = outcome = "delivered"
                # a share of delivery receipts arrives days late: what an incremental sync must catch
                updated = sent + (int(DAY * (0.5 + r() * 9.5)) if r() < 0.04 else 2 + int(r() * 25))
            elif v < 0.92:  # the carrier never confirmed
                status = outcome = "sent"
                updated = sent
            elif v < 0.97:
                status = "undelivered"
                code = _UNDELIVERED[int(r() * 4)]
                outcome = f"undelivered:{code}"
                updated = sent + (int(DAY * (0.5 + r() * 9.5)) if r() < 0.10 else 5 + int(r() * 60))
            else:  # refused before it reached a carrier: never sent, not charged
                status, code, sent, price = "failed", 30008, 0, None
                outcome = "failed:30008"
                updated = ts + 1 + int(r() * 3)
        if updated > now:
            updated = now
        if sent > updated:
            sent = updated
        sid = f"SM{mark | (ts * 1000 + int(r() * 1000)):012x}{bits(80):020x}"
        rows.append(SandboxMessageRow(
            sid, w.sid, service, direction, from_, to, body, status, segments, media, price, "USD", code,
            MESSAGE_ERRORS[code] if code else None, None, outcome, None, iso(ts), iso(updated),
            iso(sent) if sent else None,
        ))  # fmt: skip
    return rows


class _National:
    """phones.national, by template: libphonenumber's parse and format cost ~40 µs a number, which
    would be a third of the generation time. Numbers of one country with the same leading digits
    and length share one layout, so each (leading digits, length) is formatted once and its digits
    become slots; the unit tests check every generated number against phones.national."""

    def __init__(self) -> None:
        self.templates: dict[tuple[str, int], tuple[str, int]] = {}

    def __call__(self, number: str) -> str:
        # NANP has one layout, (AAA) EEE-NNNN; elsewhere it can depend on the first digits (India's on
        # up to five of them)
        lead = 5 if number.startswith("+1") else 9 if number.startswith("+91") else 6
        key = (number[:lead], len(number))
        t = self.templates.get(key)
        if t is None:
            t = self.templates[key] = self._template(number)
        template, n = t
        return template.format(*number[-n:]) if n else template

    @staticmethod
    def _template(number: str) -> tuple[str, int]:
        formatted = phones.national(number)
        try:
            n = len(str(phonenumbers.parse(number, None).national_number))
        except phonenumbers.NumberParseException:  # not ours to format: returned as it is
            return formatted.replace("{", "{{").replace("}", "}}"), 0
        slots = [i for i, ch in enumerate(formatted) if ch.isdigit()][-n:]
        chars = [ch.replace("{", "{{").replace("}", "}}") for ch in formatted]
        for i in slots:
            chars[i] = "{}"
        return "".join(chars), n


@dataclass(slots=True)
class _Answered:
    """A completed call with its start and end as epoch seconds (what the other collections hang on)."""

    row: SandboxCallRow
    start: int
    end: int


def _calls(
    rng: random.Random, spread: Sequence[_World], customers: int, n: int, now: int, iso: _Iso
) -> tuple[list[SandboxCallRow], list[_Answered]]:
    """``n`` calls: parent legs (inbound or API-created) and, for ~15 %, ``<Dial>`` legs
    (``outbound-dial``) that lie inside an answered parent call of the same account."""
    r = rng.random
    national = _National()
    statuses, child_statuses, amd = _table(_CALL_STATUSES), _table(_CHILD_STATUSES), _table(_ANSWERED_BY)
    names = [f"{f} {last}".upper() for f in _FIRST for last in _LAST[:10]] + ["WIRELESS CALLER"] * 40
    na = len(spread)
    children = int(n * _CHILD_SHARE) if n >= 10 else 0
    rows: list[SandboxCallRow] = []
    answered: list[_Answered] = []
    for ts in _times(rng, n - children, now):
        w = spread[int(r() * na)]
        customer = w.customers[int(r() * customers)]
        own = w.numbers[int(r() * len(w.numbers))]
        inbound = r() < 0.4
        status = statuses[int(r() * len(statuses))]
        start, end, duration, price, answered_by = _leg(rng, ts, status, inbound, customer, amd)
        if end > now:  # still ringing or talking at `now` would not be final: end it at `now`
            end = now
            start = min(start, now)
            duration = end - start if status == "completed" else 0
        caller = names[int(r() * len(names))] if inbound and r() < 0.4 else None
        to, from_ = (own, customer) if inbound else (customer, own)
        queue_ms = 0 if inbound else int(r() * r() * 1500)
        direction = "inbound" if inbound else "outbound-api"
        row = _call_row(rng, w.sid, None, to, from_, national, w.number_sids.get(own), status, start, end, duration,
                        price, direction, answered_by, caller, queue_ms, ts, iso)  # fmt: skip
        rows.append(row)
        if status == "completed":
            answered.append(_Answered(row, start, end))
    accounts = {w.sid: w for w in spread}
    parents = [a for a in answered if a.end - a.start >= 20]
    for _ in range(children if parents else 0):
        p = parents[int(r() * len(parents))]
        w = accounts[p.row.account_sid]
        created = p.start + 1 + int(r() * 8)
        status = child_statuses[int(r() * len(child_statuses))]
        agent = w.customers[int(r() * customers)]
        start, duration = created, 0
        end = min(created + 3 + int(r() * 30), p.end)
        if status == "completed":
            start = created + 2 + int(r() * 15)
            room = p.end - 1 - start
            if room < 1:  # the caller hung up first
                status, start = "no-answer", created
            else:
                duration = max(1, int(room * (0.3 + 0.7 * r())))
                end = start + duration
        rate = CALL_RATE_US if agent.startswith("+1") else CALL_RATE_INTL
        price = _price(math.ceil(duration / 60) * rate) if status == "completed" else None
        # the parent's caller ID is passed through (inbound) or is the account's number (outbound-api)
        row = _call_row(rng, w.sid, p.row.sid, agent, p.row.from_number, national, None, status, start, end,
                        duration, price, "outbound-dial", None, None, 0, created, iso)  # fmt: skip
        rows.append(row)
        if status == "completed":
            answered.append(_Answered(row, start, end))
    rows.sort(key=lambda c: (c.date_created, c.sid))  # PK and list-index inserts in key order
    return rows, answered


def _leg(
    rng: random.Random, ts: int, status: str, inbound: bool, customer: str, amd: Sequence[str]
) -> tuple[int, int, int, str | None, str | None]:
    """(start, end, duration, price, answered_by) of a parent call created at ``ts``."""
    r = rng.random
    if status == "completed":
        start = ts + (int(r() * 2) if inbound else 3 + int(r() * 20))
        duration = max(1, min(7200, int(rng.lognormvariate(4.3, 1.0))))  # median ~74 s, a long tail
        rate = CALL_RATE_INBOUND if inbound else CALL_RATE_US if customer.startswith("+1") else CALL_RATE_INTL
        answered_by = amd[int(r() * len(amd))] if not inbound and r() < 0.2 else None
        return start, start + duration, duration, _price(math.ceil(duration / 60) * rate), answered_by
    # not answered: no duration, not charged; the call still has a start and an end
    if status == "busy":
        ring = 2 + int(r() * 6)
    elif status == "no-answer":
        ring = 15 + int(r() * 45)
    elif status == "failed":
        ring = int(r() * 2)
    else:  # canceled while queued or ringing
        ring = 1 + int(r() * 20)
    return ts, ts + ring, 0, None, None


def _call_row(
    rng: random.Random,
    account: str,
    parent: str | None,
    to: str,
    from_: str,
    national: _National,
    number_sid: str | None,
    status: str,
    start: int,
    end: int,
    duration: int,
    price: str | None,
    direction: str,
    answered_by: str | None,
    caller: str | None,
    queue_ms: int,
    created: int,
    iso: _Iso,
) -> SandboxCallRow:
    return SandboxCallRow(
        _sid("CA", created, rng), account, parent, to, national(to), from_, national(from_), number_sid, status,
        iso(start), iso(end), duration, price, "USD", direction, answered_by, None, None, caller, queue_ms, None,
        None, None, status, None, iso(created), iso(end),
    )  # fmt: skip


def _feedback(rng: random.Random, answered: Sequence[_Answered], now: int, iso: _Iso) -> list[SandboxFeedbackRow]:
    """Feedback on ~15 % of completed calls: mostly good scores; lower scores name more issues."""
    r = rng.random
    quality = _table(_QUALITY)
    rows = []
    for a in answered:
        if r() >= FEEDBACK_SHARE:
            continue
        score = quality[int(r() * len(quality))]
        if score == 5:
            k = 0 if r() < 0.9 else 1
        elif score == 4:
            k = int(r() * 2)
        elif score == 3:
            k = 1 + int(r() * 2)
        else:
            k = 1 + int(r() * 3)
        issues = sorted(rng.sample(FEEDBACK_ISSUES, k), key=FEEDBACK_ISSUES.index)
        created = min(now, a.end + 10 + int(r() * r() * 2 * DAY))
        updated = min(now, created + int(DAY * r() * 3)) if r() < 0.05 else created
        rows.append(SandboxFeedbackRow(a.row.sid, a.row.account_sid, score, orjson.dumps(issues).decode(),
                                       iso(created), iso(updated)))  # fmt: skip
    rows.sort(key=lambda x: (x.date_created, x.call_sid))
    return rows


def _conferences(
    rng: random.Random, answered: Sequence[_Answered], n: int, now: int, iso: _Iso
) -> list[SandboxConferenceRow]:
    """Each conference is anchored on a completed call of its account: it starts when that call
    starts and ends when it ends (that call ended it, unless it was ended through the API)."""
    if not answered:
        return []
    r = rng.random
    ends, regions = _table(_CONFERENCE_ENDS), _table(_REGIONS)
    rows = []
    for _ in range(n):
        a = answered[int(r() * len(answered))]
        template = _CONFERENCE_NAMES[int(r() * len(_CONFERENCE_NAMES))]
        name = template.format(n=1 + int(r() * 40), d=iso(a.start)[:10], h=f"{rng.getrandbits(24):06x}")
        if now - a.end < 600 and r() < 0.5:  # a call of the last minutes may still be in its conference
            status, reason, by, updated = "in-progress", None, None, a.start
        else:
            status, reason, updated = "completed", ends[int(r() * len(ends))], min(now, a.end + int(r() * 3))
            by = None if reason == "conference-ended-via-api" else a.row.sid
        rows.append(SandboxConferenceRow(_sid("CF", a.start, rng), a.row.account_sid, name,
                                         regions[int(r() * len(regions))], status, reason, by, iso(a.start),
                                         iso(updated)))  # fmt: skip
    rows.sort(key=lambda x: (x.date_created, x.sid))
    return rows


def _transcriptions(
    rng: random.Random, answered: Sequence[_Answered], n: int, now: int, iso: _Iso
) -> list[SandboxTranscriptionRow]:
    """Transcriptions of completed calls' recordings (Twilio transcribes at most two minutes)."""
    if not answered:
        return []
    r = rng.random
    rows = []
    for _ in range(n):
        a = answered[int(r() * len(answered))]
        created = min(now, a.end + 1 + int(r() * 5))
        recording = _sid("RE", a.end, rng)
        duration = min(a.end - a.start, 120)
        if r() < 0.07:
            status, text, price = "failed", None, None
        else:
            status = "completed"
            text = " ".join(_VOICEMAIL[int(r() * len(_VOICEMAIL))] for _ in range(1 + int(r() * 4)))
            price = _price(math.ceil(duration / 60) * TRANSCRIPTION_RATE)
        updated = min(now, created + 10 + int(r() * 80))
        rows.append(SandboxTranscriptionRow(_sid("TR", created, rng), a.row.account_sid, recording, status, text,
                                            "fulltext", duration, price, "USD", iso(created),
                                            iso(updated)))  # fmt: skip
    rows.sort(key=lambda x: (x.date_created, x.sid))
    return rows


def _addresses(rng: random.Random, accounts: Sequence[str], now: int, iso: _Iso) -> list[SandboxAddressRow]:
    r = rng.random
    rows = []
    for account in accounts:
        for _ in range(24 + int(r() * 25)):
            iso_c, city, region, postal, streets, fmt = _PLACES[int(r() * len(_PLACES))]
            postal = "".join(str(int(r() * 10)) if ch == "#" else ch for ch in postal)
            street = fmt.format(n=1 + int(r() * 900), s=streets[int(r() * len(streets))])
            company = r() < 0.6
            customer = (f"{_BRANDS[int(r() * len(_BRANDS))]} {('Inc.', 'LLC', 'Ltd', 'GmbH')[int(r() * 4)]}"
                        if company else f"{_FIRST[int(r() * len(_FIRST))]} {_LAST[int(r() * len(_LAST))]}")  # fmt: skip
            friendly = _ADDRESS_NAMES[int(r() * len(_ADDRESS_NAMES))] if r() < 0.7 else None
            secondary = _SECONDARY[int(r() * len(_SECONDARY))] if r() < 0.3 else None
            emergency = iso_c in ("US", "CA") and r() < 0.4
            validated = r() < 0.85
            verified = validated and r() < 0.7
            created = now - int(r() * YEAR_DAYS * DAY)
            updated = min(now, created + int(r() * 30 * DAY)) if r() < 0.2 else created
            rows.append(SandboxAddressRow(_sid("AD", created, rng), account, customer, friendly, street, secondary,
                                          city, region, postal, iso_c, emergency, validated, verified, iso(created),
                                          iso(updated)))  # fmt: skip
    rows.sort(key=lambda x: (x.date_created, x.sid))
    return rows


# -- seeding a store


class SeedError(Exception):
    """The seed cannot run as asked; the message says why."""


@dataclass
class SeededAccount:
    row: AccountRow
    auth_token: str
    created: bool  # by this run
    role: str  # "main" or "subaccount"


@dataclass
class SeedReport:
    seed: int
    now: int
    accounts: list[SeededAccount]
    counts: dict[str, dict[str, int]]  # account SID → collection → rows
    rows: int
    generate_seconds: float
    insert_seconds: float


async def seed(
    rt: Runtime,
    messages: int,
    calls: int,
    subaccounts: int,
    seed: int,
    now: float,
    account_sid: str | None = None,
) -> SeedReport:
    """Seed ``rt``'s store: the main account (``account_sid``, or the first account, created as
    ``serve`` does when there is none) and ``subaccounts`` new subaccounts of it.

    The data is generated before any subaccount is created, so a run that would repeat an earlier
    one's SIDs (same seed and now) stops before adding anything."""
    main, token, created = await _main_account(rt, account_sid)
    if main.parent_sid is not None and subaccounts:
        raise SeedError(f"{main.sid} is a subaccount; subaccounts cannot have subaccounts (use --subaccounts 0)")
    placeholders = [f"AC{i:032x}" for i in range(1, subaccounts + 1)]  # stand-ins until they exist
    t0 = time.perf_counter()
    data = generate([main.sid, *placeholders], messages, calls, seed, now)
    t1 = time.perf_counter()
    for kind, rows in data.collections():
        # SIDs are a function of (seed, now): the same pair again would repeat every SID
        if kind is not kinds.FEEDBACK and rows and await rt.store.sandbox.exists(kind, rows[0].sid):
            raise SeedError(f"this database was already seeded with --seed {seed} --now {int(now)}; "
                            "pass another --seed (or --now) to add more data")  # fmt: skip
    accounts = [SeededAccount(main, token, created, "main")]
    principal = await rt.accounts.principal_of(main.sid)
    for i in range(subaccounts):
        row, sub_token = await rt.accounts.create_sub(principal, f"Seeded subaccount {i + 1} (seed {seed})")
        accounts.append(SeededAccount(row, sub_token, True, "subaccount"))
    real = {p: a.row.sid for p, a in zip(placeholders, accounts[1:], strict=True)}
    if real:
        for _, rows in data.collections():
            for row in rows:
                row.account_sid = real.get(row.account_sid, row.account_sid)
    t2 = time.perf_counter()
    for kind, rows in data.collections():
        await rt.store.sandbox.insert_many(kind, rows)
    t3 = time.perf_counter()
    return SeedReport(seed, int(now), accounts, data.counts(), data.rows(), t1 - t0, t3 - t2)


async def _main_account(rt: Runtime, account_sid: str | None) -> tuple[AccountRow, str, bool]:
    """(row, auth token, created now)."""
    if account_sid:
        row = (await rt.accounts.principal_of(account_sid)).account
        return row, rt.accounts.token_of(row), False
    configured = rt.settings.account_sid
    created = await rt.accounts.ensure_first(configured, rt.settings.auth_token)
    if created is not None:
        return created[0], created[1], True
    if configured:  # ensure_first made sure it exists
        first = await rt.store.accounts.get(normalize_sid("AC", configured) or configured)
    else:
        first = await rt.store.accounts.first()
    if first is None:  # pragma: no cover - ensure_first created one or one existed
        raise SeedError("no account to seed")
    return first, rt.accounts.token_of(first), False


_EARLIEST_NOW = 31_536_000.0  # 1971-01-01
_LATEST_NOW = 253_370_764_800.0  # 9998-12-31


def parse_now(value: str | None) -> float:
    """``--now``: epoch seconds, or a date as the list filters take it (YYYY-MM-DD, ISO 8601, RFC 2822;
    naive means UTC). None: the current time. Raises ValueError."""
    if value is None:
        return clock.now()
    v = value.strip()
    try:
        ts = float(v) if v.isdigit() else parse_date(v)[0].timestamp()
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not a date: use epoch seconds, YYYY-MM-DD, ISO 8601 or RFC 2822") from None
    if not _EARLIEST_NOW <= ts <= _LATEST_NOW:  # the year before it must fit in 1970..9999
        raise ValueError(f"{value[:40]!r} is out of range: --now must fall between 1971 and 9998")
    return ts


def report_view(report: SeedReport) -> dict[str, Any]:
    """The report as JSON: accounts with their credentials, rows per account and collection."""
    return {
        "seed": report.seed,
        "now": clock.iso(report.now),
        "accounts": [
            {
                "sid": a.row.sid,
                "auth_token": a.auth_token,
                "friendly_name": a.row.friendly_name,
                "role": a.role,
                "created": a.created,
                "parent_sid": a.row.parent_sid,
                "rows": report.counts.get(a.row.sid, {}),
            }
            for a in report.accounts
        ],
        "rows": report.rows,
        "generate_seconds": round(report.generate_seconds, 3),
        "insert_seconds": round(report.insert_seconds, 3),
    }


def report_text(report: SeedReport) -> str:
    names = [k.name for k in COLLECTIONS]
    head = ["account", *(f"{n}s" if n != "address" else "addresses" for n in names)]
    head[head.index("feedbacks")] = "feedback"
    lines = [f"eventstreams sandbox seed: seed {report.seed}, the year up to {clock.iso(report.now)} "
             f"(--seed {report.seed} --now {report.now} repeats it on an empty database)", "", "accounts:"]  # fmt: skip
    for a in report.accounts:
        what = "created now" if a.created else "existing"
        lines.append(f"  {a.role:<10} {a.row.sid}  auth token {a.auth_token}  ({a.row.friendly_name}, {what})")
    table = [head]
    totals = [0] * len(names)
    for a in report.accounts:
        counts = report.counts.get(a.row.sid, {})
        table.append([a.row.sid, *(f"{counts.get(n, 0):,}" for n in names)])
        totals = [t + counts.get(n, 0) for t, n in zip(totals, names, strict=True)]
    table.append(["total", *(f"{t:,}" for t in totals)])
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines += ["", "inserted:"]
    for row in table:  # SIDs left-aligned, numbers right-aligned
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  " + "  ".join(cells))
    rate = report.rows / (report.generate_seconds + report.insert_seconds or 1)
    lines += ["", f"{report.rows:,} rows: generated in {report.generate_seconds:.2f} s, inserted in "
                  f"{report.insert_seconds:.2f} s ({rate:,.0f} rows/s overall)"]  # fmt: skip
    return "\n".join(lines)
