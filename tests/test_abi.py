"""Abi.encode's hand-made encoding of word arguments, tuples and arrays of them equals eth_abi's, and Abi.decode's
hand-made decoding of results of every shape equals eth_abi's; anything else (or data eth_abi would refuse, or data
not laid out as Solidity lays it out) still goes through eth_abi."""

from __future__ import annotations

import random

import pytest
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_abi.exceptions import DecodingError as EthAbiDecodingError
from eth_abi.exceptions import EncodingError
from eth_abi.grammar import TupleType
from eth_abi.grammar import parse as parse_type

from chainrisk.abi import Abi, DecodingError, _decode_words, _encode_words, address_mapping_slot, keccak, load_abi


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


def _word_value(rng: random.Random, kind: str) -> object:
    if kind == "bool":
        return rng.choice([True, False])
    bits = int(kind.removeprefix("u").removeprefix("int"))
    if kind.startswith("uint"):
        return rng.choice([0, 1, (1 << bits) - 1, rng.getrandbits(bits)])
    return rng.choice([0, -1, 1, -(1 << (bits - 1)), (1 << (bits - 1)) - 1, rng.getrandbits(bits) - (1 << (bits - 1))])


def test_word_results_decode_as_eth_abi_decodes_them() -> None:
    rng = random.Random(7)
    kinds = ["bool", *(f"uint{b}" for b in (8, 64, 128, 160, 256)), *(f"int{b}" for b in (8, 24, 128, 256))]
    for size in (0, 1, 2, 5, 9):
        types = tuple(rng.choice(kinds) for _ in range(size))
        values = [_word_value(rng, kind) for kind in types]
        raw = abi_encode(list(types), values)
        assert _decode_words(types, raw) == abi_decode(list(types), raw) == tuple(values)
        assert _decode_words(types, raw + b"\x01") == abi_decode(list(types), raw + b"\x01")  # trailing bytes


def _word(value: int) -> bytes:
    return (value % (1 << 256)).to_bytes(32, "big")


@pytest.mark.parametrize(
    ("types", "raw"),
    [
        (("uint8",), _word(256)),  # padding not zero: eth_abi refuses it
        (("uint128",), _word(1 << 200)),
        (("bool",), _word(2)),
        (("int8",), _word(128)),  # not sign-extended
        (("int8",), _word(-129)),
        (("uint256", "uint256"), _word(1)),  # short
        (("uint256",), b""),
    ],
)
def test_a_word_eth_abi_refuses_is_left_to_it(types: tuple[str, ...], raw: bytes) -> None:
    assert _decode_words(types, raw) is None
    with pytest.raises(EthAbiDecodingError):
        abi_decode(list(types), raw)


#: Result types of the calls the adapters make (a reserve's data, a token list, a Morpho market), and harder ones.
RESULT_TYPES = [
    ("string",),
    ("address",),
    ("address[]",),
    ("bytes32[]",),
    ("bytes", "bytes4", "bytes32"),
    ("(string,address)[]",),
    ("(uint16,uint16,uint16,address,string)",),
    ("((uint256),uint128,uint128,uint128,uint128,uint128,uint40,uint16,address,address,address,address,uint128)",),
    ("uint256[2]", "int24[3]", "bool[]"),
    ("(uint8,string[],bytes)[2]", "string"),
    ("uint256[][]", "(address,uint256[])"),
]


def _value(rng: random.Random, kind: str) -> object:
    """A random value of an ABI type, as eth_abi takes it (the type read by eth_abi's own grammar)."""
    node = parse_type(kind)
    if node.is_array:
        dimension = node.arrlist[-1]
        size = dimension[0] if dimension else rng.choice([0, 1, 3])
        return [_value(rng, node.item_type.to_type_str()) for _ in range(size)]
    if isinstance(node, TupleType):
        return tuple(_value(rng, component.to_type_str()) for component in node.components)
    if kind == "string":
        return rng.choice(["", "USDC", "Wrapped Ether", "é" * 40, "x" * 33])
    if kind == "bytes":
        return bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 1, 32, 33, 70])))
    if kind.startswith("bytes"):
        return bytes(rng.getrandbits(8) for _ in range(int(kind[5:])))
    if kind == "address":
        return _address(rng)
    return _word_value(rng, kind)


def test_results_of_every_shape_decode_as_eth_abi_decodes_them() -> None:
    rng = random.Random(11)
    for types in RESULT_TYPES:
        for _ in range(20):
            raw = abi_encode(list(types), [_value(rng, kind) for kind in types])
            assert _decode_words(types, raw) == abi_decode(list(types), raw), types
            assert _decode_words(types, raw + b"\x07" * 5) == abi_decode(list(types), raw + b"\x07" * 5)


def _refusals() -> list[tuple[tuple[str, ...], bytes]]:
    text = abi_encode(["string"], ["USDC"])
    return [
        (("address",), _word(1 << 160)),  # padding not zero
        (("bytes4",), _word(1)),  # bytes4 padded with a non-zero byte
        (("string",), text[:-1]),  # short
        (("string",), text[:-1] + b"\x01"),  # the string's padding not zero
        (("string",), abi_encode(["bytes"], [b"\xff\xfe"])),  # not UTF-8
        (("uint256[]",), _word(32) + _word(2**200)),  # a length beyond the data
        (("string",), _word(64) + _word(0) + _word(0)),  # an offset past the canonical place
    ]


@pytest.mark.parametrize(("types", "raw"), _refusals())
def test_data_not_laid_out_as_solidity_encodes_it_is_left_to_eth_abi(types: tuple[str, ...], raw: bytes) -> None:
    assert _decode_words(types, raw) is None


@pytest.mark.parametrize("types", [("fixed128x18",), ("function",), ("()",), ("uint256[x]",)])
def test_fixed_point_and_function_results_are_left_to_eth_abi(types: tuple[str, ...]) -> None:
    assert _decode_words(types, _word(32) + _word(0) + _word(0)) is None


def test_word_tuples_encode_as_eth_abi_encodes_them() -> None:
    rng = random.Random(13)
    types = ["(address,address,address,address,uint256)", "address[]", "(uint128,uint128,bool)", "uint8"]
    for size in (0, 2):
        values = [
            (*(_address(rng) for _ in range(4)), rng.getrandbits(256)),
            [_address(rng) for _ in range(size)],
            (rng.getrandbits(128), 0, True),
            7,
        ]
        assert _encode_words(types, values) == abi_encode(types, values).hex()
    assert _encode_words(["(address,uint256)"], [("0x1234", 1)]) is None  # eth_abi validates it
    assert _encode_words(["(address,uint256[])"], [(_address(rng), [1])]) is None


def test_a_real_abis_results_decode_as_eth_abi_decodes_them() -> None:
    feed = load_abi("chainlink", "AggregatorV3Interface")
    raw = abi_encode(["uint80", "int256", "uint256", "uint256", "uint80"], [7, -3 * 10**8, 1, 2, 7])
    assert feed.decode("latestRoundData", raw) == (7, -3 * 10**8, 1, 2, 7)
    assert feed.decode("decimals", "0x" + _word(8).hex()) == (8,)
    assert feed.selector("latestRoundData") == feed.selector("latestRoundData")  # cached, the same bytes
    with pytest.raises(DecodingError, match="Padding bytes were not empty"):
        feed.decode("decimals", "0x" + _word(256).hex())  # uint8 with a high byte: eth_abi's error, as chainrisk's


def test_address_mapping_slots_equal_keccak_of_eth_abis_encoding() -> None:
    """The slot of a mapping(address => ...) value, hashed from words padded by hand, equals keccak256 of eth_abi's
    encode(["address", "uint256"]), for checksummed and lower-case keys; a key that is not 20 bytes is refused."""
    rng = random.Random(11)
    for _ in range(50):
        key, slot = _address(rng), rng.getrandbits(rng.choice((3, 64, 256)))
        want = keccak(abi_encode(["address", "uint256"], [key, slot]))
        assert address_mapping_slot(key, slot) == want
        assert address_mapping_slot(key.upper().replace("0X", "0x"), slot) == want
    with pytest.raises(ValueError, match="20-byte"):
        address_mapping_slot("0x" + "00" * 19, 5)
