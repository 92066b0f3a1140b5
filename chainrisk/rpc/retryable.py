"""The one list of RPC failures worth retrying, each with the reason it is transient, and how to recognise them."""

import re

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

#: How nodes say an eth_call ran out of gas (lower-cased, spaces taken out): geth, erigon and reth "out of gas"
#: (-32000), anvil "EVM error OutOfGas" (-32603, a code RETRYABLE_RPC_CODES holds for node pools dropping a call),
#: nethermind "OutOfGas". The call's own failure, the same however often it is asked (a contract that loops until the
#: node's gas cap, as a hostile oracle may): never retried, so a probe takes it as a refusal.
OUT_OF_GAS = "outofgas"

#: Transport failures where nothing reached the node, or the answer was lost on the way back; reads are
#: idempotent, so sending them again is safe.
RETRYABLE_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,  # node restarting or a pool member gone
    httpx.TimeoutException,  # node busy (read), or a connect/write/pool wait that timed out
    httpx.ReadError,  # connection reset while the answer was on its way
    httpx.WriteError,  # connection dropped while sending
    httpx.RemoteProtocolError,  # connection closed mid-response (body shorter than its Content-Length)
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
    "query returned more than",  # Infura (-32005 "query returned more than 10000 results")
    "block range",  # "block range is too wide", "exceed maximum block range: 5000" (Ankr, QuickNode, Polygon)
    "blocks range",  # "eth_getLogs is limited to 5000 blocks range"
    "is limited to",  # Alchemy, QuickNode: "eth_getLogs is limited to a 10,000 range"
    "range is too large",
    "too many blocks",
    "response size",  # Alchemy: "Log response size exceeded. You can make eth_getLogs requests with ..."
    "query timeout",  # the node gave up scanning the range
    "too many results",
    "max results",  # reth, erigon: "query exceeds max results 20000"
)

#: How a node behind the rest of its pool answers for a block it does not have yet (lower-cased fragments).
#: Only ever sent for blocks at or below a head the job was told, so another pool member (or the same node a
#: moment later) has it: retryable. Checked before LOG_RANGE_REFUSALS, which "block range" would also match.
LAGGING_NODE_MESSAGES: tuple[str, ...] = (
    "header not found",  # geth, for eth_call / eth_getCode / eth_getStorageAt at an unknown block
    "unknown block",  # geth, erigon
    "block not found",  # nethermind, besu
    "cannot be found",  # nethermind/Infura eth_getLogs: "One of the blocks specified in filter ... cannot be found"
    "beyond current head block",  # erigon eth_getLogs: "block range extends beyond current head block"
    "blockoutofrange",  # anvil: "BlockOutOfRangeError: block height is 231 but requested was 240"
)


#: Refusals for the number of logs or bytes an answer would hold, or the time scanning them took, not for the width of
#: the range: the widest range that passes depends on how dense the logs are there, so no ceiling is learnt from them.
LOG_RESULT_REFUSALS: tuple[str, ...] = ("results", "response size", "logs in the response", "timeout")
#: How providers name the widest range they take: "limited to a 10,000 range" (QuickNode, Alchemy), "limited to 5000
#: blocks range", "exceed maximum block range: 5000" (BSC, Polygon, Ankr), "up to a 10 block range" (Alchemy's free
#: tier).
_NAMED_RANGE = re.compile(
    r"(?:limited to (?:a )?|maximum block range:? ?|up to (?:a )?)([\d,]+)(k?)\b(?: blocks?)?(?: range)?"
)
#: A provider's suggestion of a range that works: Alchemy's "this block range should work: [0x1b4, 0x2c3]", Infura's
#: "query returned more than 10000 results. Try with this block range [0x1b4, 0x2c3]."
_SUGGESTED_RANGE = re.compile(r"(?:should work:|try with this block range) ?\[(0x[0-9a-f]+), ?(0x[0-9a-f]+)\]")


def is_size_refusal(message: str) -> bool:
    """An eth_getLogs refusal for the size of its answer (LOG_RESULT_REFUSALS), not for the width of its range."""
    lowered = message.lower()
    return any(words in lowered for words in LOG_RESULT_REFUSALS)


def log_range_ceiling(message: str) -> int | None:
    """The widest eth_getLogs range, in blocks, a refusal for the width of a range names; None where it names none, or
    refuses the answer's size instead."""
    if is_size_refusal(message):
        return None
    found = _NAMED_RANGE.search(message.lower())
    if found is None:
        return None
    blocks = int(found.group(1).replace(",", "")) * (1_000 if found.group(2) else 1)
    return blocks if blocks > 0 else None


def suggested_log_range(message: str) -> tuple[int, int] | None:
    """The (first, last) block a refusal suggests asking instead, where it suggests one (Alchemy, Infura)."""
    found = _SUGGESTED_RANGE.search(message.lower())
    if found is None:
        return None
    first, last = int(found.group(1), 16), int(found.group(2), 16)
    return (first, last) if first <= last else None


def is_range_refusal(message: str) -> bool:
    """The provider refuses this eth_getLogs range or result size (and not because it lags)."""
    lowered = message.lower()
    return not is_lagging_node(message) and any(fragment in lowered for fragment in LOG_RANGE_REFUSALS)


def is_lagging_node(message: str) -> bool:
    """The node answered that it does not have the requested block yet."""
    lowered = message.lower()
    return any(fragment in lowered for fragment in LAGGING_NODE_MESSAGES)


#: How nodes refuse a JSON-RPC batch for its length, or the calls past the size of answer they allow (lower-cased
#: fragments of their messages). The client sends the batch again in halves and keeps the smaller size. Not load:
#: sending the same batch again fails the same way.
BATCH_REFUSALS: tuple[str, ...] = (
    "batch too large",  # geth --rpc.batch-request-limit (1,000 by default): -32600 under the first call's id
    "batch limit",  # erigon --rpc.batch.limit (100): "batch limit 100 exceeded (can increase by --rpc.batch.limit)..."
    "exceeds max batch size",  # besu --rpc-http-max-batch-size: -32005 "Number of requests exceeds max batch size"
    "batch size limit",  # nethermind JsonRpc.MaxBatchSize: -32005 "Batch size limit exceeded"
    "maxbatchresponsebodysize",  # nethermind: the batch's answer over JsonRpc.MaxBatchResponseBodySize
    "response too large",  # geth --rpc.batch-response-max-size (25 MB): -32003 for each call past it
)
#: Words that, beside "batch", make a message a refusal for size in any provider's wording ("Batch of more than 3
#: requests are not allowed", "batch size exceeds the maximum of 1000").
_SIZE_WORDS = ("too large", "too big", "limit", "exceed", "more than", "maximum", "max ", "size")
#: The limit a refusal names, where it names one: "batch limit 100 exceeded", "batch of more than 3 requests".
_NAMED_LIMIT = re.compile(r"batch limit (\d+)|batch of more than (\d+)")


def is_batch_refusal(message: str) -> bool:
    """The node refuses the batch for its length or its answer's size (and would refuse it again)."""
    lowered = message.lower()
    if any(fragment in lowered for fragment in BATCH_REFUSALS):
        return True
    return "batch" in lowered and any(word in lowered for word in _SIZE_WORDS)


def named_batch_limit(message: str) -> int | None:
    """The largest batch a refusal says the node takes, when it says, else None."""
    found = _NAMED_LIMIT.search(message.lower())
    if found is None:
        return None
    limit = int(next(g for g in found.groups() if g is not None))
    return limit if limit > 0 else None


def is_out_of_gas(message: str) -> bool:
    """The node ran the call and it ran out of gas (OUT_OF_GAS): not a load error, whatever its code."""
    return OUT_OF_GAS in message.lower().replace(" ", "")
