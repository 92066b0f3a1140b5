"""The committed lens runtime is exactly what solcjs 0.8.19 builds from the committed source."""

from pathlib import Path

from chainrisk.devnet.toolchain import compiled_contracts
from chainrisk.protocols.aave_v3.snapshot import LENS_RUNTIME


def test_committed_lens_runtime_matches_its_source() -> None:
    assert compiled_contracts()["AaveV3AccountsLens"].runtime == LENS_RUNTIME
    abi_file = Path(__file__).resolve().parent.parent / "abis" / "aave-v3" / "AaveV3AccountsLens.json"
    assert abi_file.is_file()
