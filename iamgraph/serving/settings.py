"""The environment contract between ``iamgraph serve`` and ``api.main:app_from_env``, and the loopback rule.

``iamgraph serve`` hands its options to uvicorn as ``IAMGRAPH_API_*`` environment variables and names the app
factory as a string, because the CLI layer may not import ``api``; the API reads the same variables back.
"""

from __future__ import annotations

import ipaddress

ENV_PREFIX = "IAMGRAPH_API_"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and any loopback address (127.0.0.0/8, ::1); False for names and other addresses.

    Anonymous serving is allowed only on loopback, and only loopback callers get it, so both the CLI's option
    check and the API's per-request check ask this one function.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
