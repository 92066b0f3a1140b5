"""JSON-RPC access to an Ethereum node: batching, retries for retryable failures, secret-safe URLs."""

from chainrisk.rpc.client import RpcClient, RpcError, mask_url

__all__ = ["RpcClient", "RpcError", "mask_url"]
