"""JSON-RPC access to an Ethereum node: batching, retries for retryable failures, secret-safe URLs."""

from chainrisk.rpc.client import FAULT_KINDS, RpcClient, RpcError, RpcSettings, RpcUsage, mask_url, use_settings

__all__ = ["FAULT_KINDS", "RpcClient", "RpcError", "RpcSettings", "RpcUsage", "mask_url", "use_settings"]
