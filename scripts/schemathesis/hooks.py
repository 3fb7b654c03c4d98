"""schemathesis hooks for scripts/schemathesis.sh.

An interaction id is an idempotency key: the same id with another body is
refused with 422 `idempotency_mismatch`, by design (tests/it/decisions.rs
covers it). Generated bodies reuse ids all the time ("0", the schema's
example), which would turn every later schema-valid decision into that 422
and hide real schema mismatches behind it. So each generated id that is
already valid gets a unique suffix; ids that are invalid stay as generated,
so negative cases stay negative.
"""

import itertools
import re

import schemathesis

_VALID_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_counter = itertools.count()


def _make_unique(interaction):
    if not isinstance(interaction, dict):
        return
    iid = interaction.get("interaction_id")
    if isinstance(iid, str) and _VALID_ID.fullmatch(iid):
        suffix = f".st{next(_counter)}"
        interaction["interaction_id"] = iid[: 128 - len(suffix)] + suffix


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if case.method.upper() != "POST":
        return
    if case.path == "/v1/decisions":
        _make_unique(case.body)
    elif case.path == "/v1/decisions/batch":
        body = case.body
        items = body.get("interactions") if isinstance(body, dict) else body
        if isinstance(items, list):
            for item in items:
                _make_unique(item)
