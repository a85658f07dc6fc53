"""The shape shared by `inbound_auth` and `outbound_auth`: a `strategy` and the one block it names."""

from __future__ import annotations

from pydantic import model_validator

from mcp_anything.config.scripts import ScriptConfig
from mcp_anything.config.types import StrictModel

SCRIPT_STRATEGIES = ("lua", "js")


class StrategyBlock(StrictModel):
    """`{strategy: X, X: {...}}`: the block named by `strategy` must be present, no other."""

    strategy: str

    @property
    def script(self) -> ScriptConfig | None:
        """The block of a script strategy (`lua:` or `js:`), else None."""
        block = getattr(self, self.strategy) if self.strategy in SCRIPT_STRATEGIES else None
        assert block is None or isinstance(block, ScriptConfig)
        return block

    @model_validator(mode="after")
    def _block_matches_strategy(self) -> StrategyBlock:
        blocks = [name for name in type(self).model_fields if name != "strategy"]
        if self.strategy != "none" and getattr(self, self.strategy) is None:
            raise ValueError(f"strategy {self.strategy!r} needs a `{self.strategy}:` block")
        extra = [b for b in blocks if b != self.strategy and getattr(self, b) is not None]
        if extra:
            raise ValueError(f"`{extra[0]}:` block given but strategy is {self.strategy!r}")
        return self
