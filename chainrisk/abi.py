"""Loads interface ABIs from abis/<protocol>/<Name>.json and encodes calls and decodes results with them.

eth_abi (and eth_utils, which it brings) is imported where a value needs it, not with this module: ~0.35 s of every
chainrisk process's 1.1 s of imports, where most calls are encoded and decoded by hand (_encode_words, _decode_words)
and `chainrisk --help` needs neither.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from chainrisk.resources import data_dir

ABI_DIR = data_dir("abis")


class DecodingError(ValueError):
    """Data eth_abi refuses to decode as a function's outputs (eth_abi's DecodingError, raised as chainrisk's)."""


def keccak(data: bytes) -> bytes:
    """keccak256 (eth_hash, the library eth_utils' keccak calls)."""
    from eth_hash.auto import keccak as hash_

    return hash_(data)


def abi_encode(types: list[str], values: list[Any]) -> bytes:
    """eth_abi's encoding of `values` as `types`."""
    from eth_abi.abi import encode

    return encode(types, values)


def address_mapping_slot(key: str, slot: int) -> bytes:
    """Where Solidity keeps `mapping(address => ...)` at storage `slot`'s value for `key`: keccak256 of the key
    left-padded to 32 bytes, then the slot as a uint256 (abi.encode(key, slot)), encoded by hand: eth_abi's import
    alone took 0.37 s of a devnet run, which needed it for nothing else."""
    address = bytes.fromhex(key.removeprefix("0x"))
    if len(address) != 20:
        raise ValueError(f"{key} is not a 20-byte address")
    return keccak(bytes(12) + address + slot.to_bytes(32, "big"))


def function_selector(signature: str) -> bytes:
    """The first four bytes of keccak256 of a function's canonical signature, e.g. `transfer(address,uint256)`."""
    return keccak(signature.encode())[:4]


def _type_str(param: dict[str, Any]) -> str:
    kind: str = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_type_str(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


class Abi:
    """One contract ABI: `encode(fn, *args)` builds calldata, `decode(fn, data)` reads a result."""

    def __init__(self, abi: list[dict[str, Any]]) -> None:
        self.entries = abi
        self._functions: dict[str, list[dict[str, Any]]] = {}
        for entry in abi:
            if entry.get("type") == "function":
                self._functions.setdefault(entry["name"], []).append(entry)
        # A function's types and selector, by (name, arity), worked out once: the selector is a keccak and the
        # types a walk of the ABI, which the devnet's builder and the indexers' calls would otherwise redo per call.
        self._signatures: dict[tuple[str, int | None], _Signature] = {}

    def _function(self, name: str, arity: int | None = None) -> dict[str, Any]:
        candidates = self._functions[name]
        if arity is not None:
            candidates = [c for c in candidates if len(c["inputs"]) == arity]
        if len(candidates) != 1:
            raise ValueError(f"function {name} is ambiguous or missing for arity {arity}")
        return candidates[0]

    def _signature(self, name: str, arity: int | None) -> _Signature:
        signature = self._signatures.get((name, arity))
        if signature is None:
            entry = self._function(name, arity)
            inputs = tuple(_type_str(p) for p in entry["inputs"])
            selector = function_selector(f"{name}({','.join(inputs)})")
            signature = _Signature(inputs, tuple(_type_str(p) for p in entry["outputs"]), selector)
            self._signatures[(name, arity)] = signature
        return signature

    def selector(self, name: str, arity: int | None = None) -> bytes:
        return self._signature(name, arity).selector

    def encode(self, name: str, *args: Any) -> str:
        signature = self._signature(name, len(args))
        types = list(signature.inputs)
        values = [
            bytes.fromhex(v[2:]) if t.startswith("bytes") and isinstance(v, str) else v
            for t, v in zip(types, args, strict=True)
        ]
        fast = _encode_words(types, values)
        encoded = abi_encode(types, values).hex() if fast is None else fast
        return "0x" + signature.selector.hex() + encoded

    def deploy_data(self, bytecode: str, *args: Any) -> str:
        constructors = [e for e in self.entries if e.get("type") == "constructor"]
        types = [_type_str(p) for p in constructors[0]["inputs"]] if constructors else []
        return bytecode + abi_encode(types, list(args)).hex()

    def decode(self, name: str, data: str | bytes, arity: int | None = None) -> tuple[Any, ...]:
        outputs = self._signature(name, arity).outputs
        raw = bytes.fromhex(data[2:]) if isinstance(data, str) else data
        fast = _decode_words(outputs, raw)
        if fast is not None:
            return fast
        from eth_abi.abi import decode
        from eth_abi.exceptions import DecodingError as Refused

        try:
            return tuple(decode(list(outputs), raw))
        except Refused as exc:
            raise DecodingError(str(exc)) from exc


@dataclass(frozen=True)
class _Signature:
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    selector: bytes


class _Refused(Exception):
    """The hand-made decoding does not take this data (eth_abi then decides)."""


def _decode_words(types: tuple[str, ...], raw: bytes) -> tuple[Any, ...] | None:
    """abi_decode(types, raw) by hand: what eth_abi gives (addresses in lower case, arrays and tuples as tuples,
    strings as str), for every type but fixed-point ones, or None for data that is not laid out as Solidity encodes it
    (a dynamic part not right after the ones before it), short data, or a value eth_abi would refuse (non-zero
    padding, a bool not 0 or 1, an int not sign-extended, a string not UTF-8), which then goes through eth_abi and
    raises or decodes as before. Every call a run makes is decoded here, so eth_abi (0.3 s of imports with eth_utils
    and pydantic) is seldom loaded. tests/test_abi.py checks the two agree."""
    try:
        values, _ = _decode_tuple(tuple(_parse(kind) for kind in types), raw, 0)
    except _Refused:
        return None
    return values


#: A parsed ABI type: ("word", kind) for a 32-byte static value, ("bytes", kind) for bytes/string, ("array", element,
#: length or None), ("tuple", components).
_Type = tuple[Any, ...]


@functools.cache
def _parse(kind: str) -> _Type:
    if kind.endswith("]"):
        cut = kind.rindex("[")
        size = kind[cut + 1 : -1]
        if size and not size.isdigit():
            raise _Refused
        return ("array", _parse(kind[:cut]), int(size) if size else None)
    if kind.startswith("(") and kind.endswith(")") and kind != "()":  # eth_abi refuses a tuple of nothing
        parts: list[str] = []
        depth, last = 0, 1
        for index, char in enumerate(kind[1:-1], start=1):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if char == "," and depth == 0:
                parts.append(kind[last:index])
                last = index + 1
        parts.append(kind[last:-1])
        return ("tuple", tuple(_parse(part) for part in parts))
    if kind in ("bytes", "string"):
        return ("bytes", kind)
    if kind in _UINT_BITS or kind in _INT_BITS or kind in _BYTES_SIZES or kind in ("bool", "address"):
        return ("word", kind)
    raise _Refused  # fixed, ufixed, function: eth_abi's


@functools.cache
def _static_size(node: _Type) -> int | None:
    """Bytes a static type takes in place; None for a dynamic one (it takes a 32-byte offset there)."""
    if node[0] == "word":
        return 32
    if node[0] == "bytes" or (node[0] == "array" and node[2] is None):
        return None
    if node[0] == "array":
        element = _static_size(node[1])
        return None if element is None else element * node[2]
    sizes = [_static_size(component) for component in node[1]]
    return None if None in sizes else sum(s for s in sizes if s is not None)


def _int_at(raw: bytes, at: int) -> int:
    if at + 32 > len(raw):
        raise _Refused
    return int.from_bytes(raw[at : at + 32], "big")


def _decode_tuple(components: tuple[_Type, ...], raw: bytes, base: int) -> tuple[tuple[Any, ...], int]:
    """The values of `components` encoded from `base`, and where their encoding ends."""
    head = base
    tail = base + sum(_static_size(c) or 32 for c in components)
    values: list[Any] = []
    for component in components:
        size = _static_size(component)
        if size is None:
            if base + _int_at(raw, head) != tail:  # not where Solidity puts it
                raise _Refused
            value, tail = _decode(component, raw, tail)
            head += 32
        else:
            value, _ = _decode(component, raw, head)
            head += size
        values.append(value)
    return tuple(values), tail


def _decode(node: _Type, raw: bytes, at: int) -> tuple[Any, int]:
    """One value encoded at `at`, and where its encoding ends."""
    kind = node[0]
    if kind == "word":
        return _decode_word(node[1], _int_at(raw, at)), at + 32
    if kind == "bytes":
        length = _int_at(raw, at)
        end = at + 32 + -(-length // 32) * 32
        if end > len(raw) or any(raw[at + 32 + length : end]):
            raise _Refused
        data = raw[at + 32 : at + 32 + length]
        if node[1] == "bytes":
            return data, end
        try:
            return data.decode("utf-8"), end
        except UnicodeDecodeError:
            raise _Refused from None
    if kind == "array":
        element, length = node[1], node[2]
        if length is None:
            length = _int_at(raw, at)
            at += 32
        if length * (_static_size(element) or 32) > len(raw) - at:
            raise _Refused
        return _decode_tuple((element,) * length, raw, at)
    return _decode_tuple(node[1], raw, at)


def _decode_word(kind: str, value: int) -> Any:
    bits = _UINT_BITS.get(kind)
    if bits is not None:
        if value >> bits:
            raise _Refused
        return value
    bits = _INT_BITS.get(kind)
    if bits is not None:
        signed = value - (1 << 256) if value >> 255 else value
        if not -(1 << (bits - 1)) <= signed < 1 << (bits - 1):
            raise _Refused
        return signed
    if kind == "address":
        if value >> 160:
            raise _Refused
        return "0x" + format(value, "040x")
    size = _BYTES_SIZES.get(kind)
    if size is not None:
        data = value.to_bytes(32, "big")
        if any(data[size:]):
            raise _Refused
        return data[:size]
    if value > 1:  # bool
        raise _Refused
    return value == 1


def _word(kind: str, value: Any) -> str | None:
    """One static ABI word as 64 hex digits, or None when `kind`/`value` is not one the fast path takes as is."""
    if kind == "address":
        if type(value) is str and _ADDRESS.fullmatch(value):
            return value[2:].lower().rjust(64, "0")
        return None
    if kind == "bool":
        return ("1" if value else "0").rjust(64, "0") if type(value) is bool else None
    bits = _UINT_BITS.get(kind)
    if bits is not None:
        return format(value, "064x") if type(value) is int and 0 <= value < 1 << bits else None
    size = _BYTES_SIZES.get(kind)
    if size is not None and type(value) is bytes and len(value) == size:
        return value.hex().ljust(64, "0")
    return None


def _word_tuple(kind: str) -> tuple[str, ...] | None:
    """The word types of a tuple type made of words only (Morpho's MarketParams), else None."""
    if not kind.startswith("("):
        return None
    try:
        node = _parse(kind)
    except _Refused:
        return None
    if node[0] != "tuple" or any(component[0] != "word" for component in node[1]):
        return None
    return tuple(component[1] for component in node[1])


def _encode_words(types: list[str], values: list[Any]) -> str | None:
    """abi_encode(types, values) as hex, by hand, when every argument is an address, bool, uint or bytesN (of
    exactly N bytes), a tuple of them (in place) or a 1-D dynamic array of them (the lens calls carry tens of
    thousands of addresses: eth_abi checks each one through several layers of Python, which cost seconds a run);
    None for anything else, which eth_abi encodes (and validates). tests/test_abi.py checks the two agree."""
    tuples = [_word_tuple(kind) for kind in types]
    head: list[str] = []
    tail: list[str] = []
    head_words = sum(1 if members is None else len(members) for members in tuples)
    tail_words = 0
    for kind, members, value in zip(types, tuples, values, strict=True):
        if members is not None:
            if not isinstance(value, list | tuple) or len(value) != len(members):
                return None
            words = [_word(member, item) for member, item in zip(members, value, strict=True)]
            if None in words:
                return None
            head.extend(w for w in words if w is not None)
        elif kind.endswith("[]"):
            inner = kind[:-2]
            if inner.endswith("]") or not isinstance(value, list | tuple):
                return None
            words = [_word(inner, item) for item in value]
            if None in words:
                return None
            head.append(format(32 * (head_words + tail_words), "064x"))
            tail.append(format(len(words), "064x"))
            tail.extend(w for w in words if w is not None)
            tail_words += 1 + len(words)
        else:
            word = _word(kind, value)
            if word is None:
                return None
            head.append(word)
    return "".join(head) + "".join(tail)


_ADDRESS = re.compile(r"0x(?:[0-9a-f]{40}|[0-9A-F]{40})")
_UINT_BITS = {f"uint{bits}": bits for bits in range(8, 257, 8)}
_INT_BITS = {f"int{bits}": bits for bits in range(8, 257, 8)}
_BYTES_SIZES = {f"bytes{size}": size for size in range(1, 33)}


@functools.cache
def load_abi(protocol: str, name: str) -> Abi:
    """The committed interface ABI `abis/<protocol>/<name>.json`."""
    return Abi(json.loads((ABI_DIR / protocol / f"{name}.json").read_text()))


def event_topic(signature: str) -> str:
    """topic0 of an event: keccak256 of its canonical signature, 0x-hex."""
    return "0x" + keccak(signature.encode()).hex()


def word_address(word: str) -> str:
    """An address from a 32-byte hex word of a log's topics or data (with or without 0x): its last 20 bytes."""
    return "0x" + word[-40:]


def data_word(data: str, index: int) -> str:
    """Word `index` (32 bytes, hex without 0x) of a log's 0x-hex data; empty past its end."""
    start = 2 + 64 * index
    return data[start : start + 64]


def eth_call(to: str, abi: Abi, fn: str, *args: Any, block: str = "latest") -> tuple[str, list[Any]]:
    """A JSON-RPC eth_call request for `fn(*args)` on `to`, ready for RpcClient.call/batch."""
    return ("eth_call", [{"to": to, "data": abi.encode(fn, *args)}, block])
