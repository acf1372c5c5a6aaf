"""Property: Config validation either accepts a config that satisfies every invariant, or
raises ValueError/TypeError naming the offending field — never anything else."""
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from metakit.experiments import Config

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6), st.booleans(),
                    st.text(max_size=3), st.none())
FIELDS = {
    "imbalance": numbers, "noise_rate": numbers, "lr": numbers, "momentum": numbers, "weight_decay": numbers,
    "epochs": numbers, "batch_size": numbers, "meta_per_class": numbers, "meta_every": numbers, "seed": numbers,
    "gamma": numbers, "noise_kind": st.sampled_from(["none", "uniform", "flip", "flip2", "gauss", ""]),
    "dataset": st.sampled_from(["digits", "mnist", "DIGITS"]),
    "model": st.sampled_from(["digits_cnn", "mlp", "vgg", None]),
    "profile": st.sampled_from(["smoke", "laptop", "paper", "tiny", None]),
    "method": st.sampled_from(["ce", "nope"]),
}


def invariants_hold(c: Config) -> bool:
    return (c.imbalance >= 1 and 0 <= c.noise_rate < 1 and c.lr > 0 and 0 <= c.momentum <= 1
            and c.epochs >= 1 and c.batch_size >= 1 and c.meta_per_class >= 0 and c.meta_every >= 1
            and c.seed >= 0 and (c.noise_kind != "none" or c.noise_rate == 0) and math.isfinite(c.lr))


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({}, optional=FIELDS))
def test_config_validation_accepts_valid_or_names_the_field(fields):
    fields = {k: v for k, v in fields.items() if not (v is None and k not in ("model", "profile"))}
    try:
        config = Config(**fields).resolve()
    except (ValueError, TypeError) as err:
        message = str(err)
        assert any(f"{name}=" in message for name in list(fields) + ["profile", "meta_per_class"]), message
        return
    assert invariants_hold(config)
