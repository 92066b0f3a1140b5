"""Aave V3 pool versions (3.0 to 3.7) and the maths rules each switches on, as the aave-v3-origin tags define (3.7:
the repository's main branch, untagged, with docs/3.7; no registry ships its bytecode, so its rules are read from the
source alone)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from chainrisk.errors import UserError

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$")

#: Pool.POOL_REVISION (src/contracts/instances/PoolInstance.sol at each aave-v3-origin tag) to the pool version:
#: v3.1.0 4, v3.2.0 5, v3.2.1 6, v3.3.0 7, v3.4.0 8, v3.5.0 9, v3.6.0 10, 3.7 (main at fd1fbd91, June 2026) 11;
#: @aave/core-v3 (3.0.x) used 1 to 3.
_REVISIONS = {
    1: (3, 0),
    2: (3, 0),
    3: (3, 0),
    4: (3, 1),
    5: (3, 2),
    6: (3, 2),
    7: (3, 3),
    8: (3, 4),
    9: (3, 5),
    10: (3, 6),
    11: (3, 7),
}


@dataclass(frozen=True, order=True)
class PoolVersion:
    """An Aave V3 pool version; the properties say which of its maths rules apply."""

    major: int  #: 3
    minor: int  #: 0 to 7
    patch: int = 0  #: patch releases change no maths here

    @classmethod
    def parse(cls, text: str) -> PoolVersion:
        """'3.4', '3.0.2' or 'v3.6.0'."""
        match = _VERSION.match(text.strip())
        if match is None or int(match.group(1)) != 3 or not 0 <= int(match.group(2)) <= 7:
            raise UserError(f"unknown Aave V3 pool version {text!r}; give one of 3.0 to 3.7 (e.g. 3.4)")
        return cls(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))

    @classmethod
    def from_pool_revision(cls, revision: int) -> PoolVersion:
        """The version whose Pool implementation reports `revision` (Pool.POOL_REVISION)."""
        if revision not in _REVISIONS:
            raise UserError(f"Aave pool revision {revision} is not one of the known 3.0-3.7 pools (1 to 11)")
        return cls(*_REVISIONS[revision])

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def _at_least(self, minor: int) -> bool:
        return (self.major, self.minor) >= (3, minor)

    @property
    def has_stable_debt(self) -> bool:
        """Stable debt counts in the account (removed in 3.2: docs/3.2, 'Deprecation of stable debt')."""
        return not self._at_least(2)

    @property
    def emode_by_reserve_category(self) -> bool:
        """E-mode membership is the reserve's configured category and the category may name a price source
        (3.0/3.1: EModeLogic.getEModeConfiguration); from 3.2 it is the category's collateral bitmap."""
        return not self._at_least(2)

    @property
    def has_grace_period(self) -> bool:
        """ValidationLogic.validateLiquidationCall checks liquidationGracePeriodUntil (3.1+)."""
        return self._at_least(1)

    @property
    def position_size_close_factor(self) -> bool:
        """3.3+ liquidations: whole-debt close factor below $2,000, MustNotLeaveDust, deficits
        (LiquidationLogic.executeLiquidationCall, docs/3.3)."""
        return self._at_least(3)

    @property
    def exact_taylor_compounding(self) -> bool:
        """MathUtils.calculateCompoundedInterest multiplies before dividing (3.4+: x + x(x/2 + x(x/6)))."""
        return self._at_least(4)

    @property
    def directional_rounding(self) -> bool:
        """3.5+: collateral rounds down, debt up (TokenMath, rayMulFloor/Ceil, mulDivCeil); the health factor is
        the threshold-weighted sum wad-divided by debt (GenericLogic.calculateUserAccountData)."""
        return self._at_least(5)

    @property
    def emode_decoupled(self) -> bool:
        """3.6+: e-mode LTV from the category with its ltvzero bitmap (ValidationLogic.getUserReserveLtv), any
        collateral-flagged supply counts whatever the reserve's own threshold."""
        return self._at_least(6)

    @property
    def collateral_on_receipt(self) -> bool:
        """aTokens received by transfer or liquidation are enabled as the receiver's collateral when they can be
        (before 3.6: AToken._transfer / LiquidationLogic._liquidateATokens; docs/3.6 'Automatic Collateral')."""
        return not self._at_least(6)

    @property
    def isolated_emode(self) -> bool:
        """3.7+: a category flagged isolated gives every asset outside its collateral bitmap LTV 0
        (ValidationLogic.getUserReserveLtv; docs/3.7/isolated-emode.md); thresholds, and so health, are unchanged."""
        return self._at_least(7)

    @property
    def deterministic_liquidation_rounding(self) -> bool:
        """3.7+: LiquidationLogic._calculateAvailableCollateralToLiquidate rounds against the liquidator
        (percentMulFloor of the bonus, percentDivFloor of the bonus's base, percentMulCeil of the protocol fee), and
        hasNoCollateralLeft counts the scaled aTokens the liquidation consumes (docs/3.7/liquidation-rounding.md)."""
        return self._at_least(7)

    @property
    def has_isolation_mode(self) -> bool:
        """Isolation mode (debt ceilings) and siloed borrowing exist before 3.7, which removed them; their
        configuration bits are deprecated and isolationModeTotalDebt reads 0 (docs/3.7/mode-removal.md)."""
        return not self._at_least(7)

    @property
    def has_price_oracle_sentinel(self) -> bool:
        """Before 3.7 validateLiquidationCall asks the provider's PriceOracleSentinel (3.7 removed it:
        docs/3.7/sentinel-removal.md)."""
        return not self._at_least(7)


V3_0 = PoolVersion(3, 0)
ALL_VERSIONS = tuple(PoolVersion(3, minor) for minor in range(8))
