"""The one list of RPC failures worth retrying, each with the reason it is transient."""

import httpx

#: HTTP statuses a provider returns for load or maintenance; the same request later succeeds.
RETRYABLE_HTTP_STATUS: dict[int, str] = {
    408: "request timeout at the provider's edge",
    425: "provider asks to retry after replay protection",
    429: "rate limited; honour Retry-After",
    500: "transient internal error at gateways that front node pools",
    502: "bad gateway between load balancer and node",
    503: "node pool unavailable or overloaded",
    504: "gateway timeout while the node was busy",
}

#: JSON-RPC error codes that describe load, not a bad request.
RETRYABLE_RPC_CODES: dict[int, str] = {
    -32005: "limit exceeded (EIP-1474): request rate or compute units",
    -32603: "internal error, which node pools return when a backend node drops the call",
    429: "rate limit sent as a JSON-RPC error object by some providers",
}

#: Transport failures where nothing reached the node, or the answer was lost on the way back.
RETRYABLE_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,  # node restarting or a pool member gone
    httpx.ReadTimeout,  # node busy; reads are idempotent
    httpx.RemoteProtocolError,  # connection reset mid-response
    httpx.WriteError,  # connection dropped while sending
)

#: Methods that only read, so a retry can never apply anything twice.
READ_METHODS: frozenset[str] = frozenset(
    {
        "eth_call",
        "eth_chainId",
        "eth_blockNumber",
        "eth_getBlockByNumber",
        "eth_getBlockByHash",
        "eth_getLogs",
        "eth_getCode",
        "eth_getBalance",
        "eth_getStorageAt",
        "eth_getTransactionReceipt",
        "eth_getTransactionCount",
        "net_version",
        "web3_clientVersion",
    }
)

#: How providers refuse an eth_getLogs range or result size (lower-cased fragments of their messages);
#: the log fetcher halves its block span and tries again. Not retryable as such: the request must change.
LOG_RANGE_REFUSALS: tuple[str, ...] = (
    "query returned more than",  # Infura, Alchemy: result count over 10,000
    "block range",  # "block range is too wide", "exceed maximum block range" (QuickNode, Ankr, Cloudflare)
    "range is too large",
    "too many blocks",
    "response size",  # "Log response size exceeded" (Alchemy)
    "limit exceeded",
    "query timeout",
    "too many results",
    "max results",
)
