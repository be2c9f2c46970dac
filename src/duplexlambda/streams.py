"""``req`` and ``res``, the two streams a duplex handler gets (public import path).

The implementations live in ``duplexlambda.runtime.request`` and ``duplexlambda.runtime.response``.
"""

from duplexlambda.runtime.request import HttpInfo, Request, http_info
from duplexlambda.runtime.response import Response, ResponseHeaders, StreamState

__all__ = ["HttpInfo", "Request", "Response", "ResponseHeaders", "StreamState", "http_info"]
