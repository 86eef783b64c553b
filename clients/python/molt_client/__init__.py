"""Python client of a molt agent's local API (standard library only).

    from molt_client import MoltClient
    client = MoltClient.from_data_dir()          # $MOLT_HOME or ~/.molt, token from <data dir>/api-token
    reply = client.request(peer, "query", {"domain": "weather", "intent": "forecast", "params": {"location": "Lisbon"}})
    for entry in client.messages():              # pushed as they arrive, resumed by cursor after a drop
        ...
"""
from .client import MoltClient, Subscription, default_data_dir, read_endpoint, read_token
from .errors import MoltApiError, MoltConfigError, MoltConnectionError, MoltError
from .types import DiscoveredAgent, InboxEntry, InboxPage, SendResult, TrustScore

__all__ = [
    "MoltClient", "Subscription", "default_data_dir", "read_endpoint", "read_token",
    "MoltApiError", "MoltConfigError", "MoltConnectionError", "MoltError",
    "DiscoveredAgent", "InboxEntry", "InboxPage", "SendResult", "TrustScore",
]
__version__ = "0.1.0"
