"""JSON shapes of the local API (protocols/api.md), as TypedDicts.

Only the fields a client commonly reads are spelled out; every answer is the
API's JSON as decoded, so fields the API adds later are there too.
"""
from __future__ import annotations

from typing import Any, Dict, List, TypedDict

JSON = Dict[str, Any]


class InboxEntry(TypedDict):
    """One received message, from the inbox or the stream; ``message`` is the MoltSpeak message as received."""

    cursor: int
    receivedAt: int
    peer: str
    route: str
    message: JSON


class InboxPage(TypedDict):
    messages: List[InboxEntry]
    #: pass as ``after`` to get what came later
    next: int


class SendResult(TypedDict, total=False):
    """Where a sent message is: ``status`` is ``delivered``, ``stored`` or ``queued``."""

    id: str
    peer: str
    status: str
    delivered: bool
    delivery: str
    route: str
    message: JSON


class DiscoveredAgent(TypedDict, total=False):
    """An agent offering a capability, with its verified card; ``trust`` only with ``find(..., with_trust=True)``."""

    peerId: str
    card: JSON
    source: str
    trust: "TrustScore"


class TrustScore(TypedDict, total=False):
    """This agent's score of a peer (protocols/trust.md)."""

    peer: str
    domain: str
    score: float
    confidence: float
    band: str
    confidenceBand: str
    positive: float
    negative: float
    explain: List[Any]
