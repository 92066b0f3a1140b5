"""Abi.encode's hand-made encoding of word arguments and arrays of them equals eth_abi's, and anything else (or a
value eth_abi would refuse) still goes through eth_abi."""

from __future__ import annotations

import random

import pytest
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import EncodingError

from chainrisk.abi import Abi, _encode_words, load_abi


def _address(rng: random.Random) -> str:
    return "0x" + rng.getrandbits(160).to_bytes(20, "big").hex()


def test_words_and_arrays_equal_eth_abi() -> None:
    rng = random.Random(3)
    types = ["address", "address[]", "uint256[]", "bool", "uint8", "address[]", "uint128", "bytes32[]", "bytes4"]
    for size in (0, 1, 2, 17):
        values = [
            _address(rng),
            [_address(rng) for _ in range(size)],
            [rng.choice([0, 1, 2**256 - 1, rng.getrandbits(200)]) for _ in range(size)],
            rng.choice([True, False]),
            255,
            [_address(rng).upper().replace("0X", "0x") for _ in range(size)],
            2**128 - 1,
            [rng.getrandbits(256).to_bytes(32, "big") for _ in range(size)],
            b"\x01\x02\x03\x04",
        ]
        assert _encode_words(types, values) == abi_encode(types, values).hex()


@pytest.mark.parametrize(
    ("types", "values"),
    [
        (["uint8"], [256]),  # out of range: eth_abi raises
        (["uint256"], [-1]),
        (["uint256"], [True]),  # a bool is no uint to eth_abi
        (["bool"], [1]),
        (["address"], ["0x52908400098527886E0F7030069857D2E4169EE7"[:-1] + "e"]),  # checksum case: eth_abi checks it
        (["address"], ["0x1234"]),
        (["int256"], [1]),  # not a type the fast path takes
        (["bytes32"], [b"\0" * 31]),  # shorter than the type: eth_abi pads it
        (["uint256[2]"], [[1, 2]]),
        (["uint256[][]"], [[[1]]]),
    ],
)
def test_anything_else_is_left_to_eth_abi(types: list[str], values: list[object]) -> None:
    assert _encode_words(types, values) is None


def test_the_lens_call_is_encoded_as_eth_abi_encodes_it() -> None:
    lens = load_abi("aave-v3", "AaveV3AccountsLens")
    rng = random.Random(5)
    wallets = [_address(rng) for _ in range(50)]
    args = (_address(rng), wallets, [rng.getrandbits(8) for _ in wallets], *([_address(rng)] * 3 for _ in range(3)))
    expected = (
        "0x"
        + (
            lens.selector("accounts", 6)
            + abi_encode(["address", "address[]", "uint256[]", "address[]", "address[]", "address[]"], list(args))
        ).hex()
    )
    assert lens.encode("accounts", *args) == expected
    with pytest.raises(EncodingError, match="cannot be encoded"):
        Abi(lens.entries).encode("accounts", args[0], wallets, [-1] * len(wallets), *args[3:])
