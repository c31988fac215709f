"""The parameter table is the one source of run settings: every entry is a `toylab run` option,
a RunConfig field (or target option) and a `toylab.fit` keyword, checked by the same rules."""

import argparse

import pytest

import toylab
from toylab import params
from toylab.catalog import method_names
from toylab.cli import build_parser
from toylab.config import RunConfig
from toylab.errors import ToylabError


def run_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["run"]


def test_every_parameter_is_a_run_option_and_a_config_field():
    options = {s for a in run_parser()._actions for s in a.option_strings}
    fields = set(RunConfig.__dataclass_fields__)
    for p in params.PARAMS:
        assert p.flag in options, p.name
        assert (p.name in fields) != bool(p.keyword), p.name
    assert fields == {p.name for p in params.CONFIG_PARAMS} | {"target_options"}


def test_defaults_come_from_the_table():
    cfg = RunConfig()
    for p in params.CONFIG_PARAMS:
        assert getattr(cfg, p.name) == p.default, p.name
    assert f"(default {params.BY_NAME['nodes'].default})" in run_parser().format_help()


@pytest.mark.parametrize("p", [p for p in params.CONFIG_PARAMS if p.kind == "int"], ids=str)
def test_integers_below_their_minimum_are_refused_naming_the_flag(p):
    if p.minimum is None:
        pytest.skip("no minimum")
    with pytest.raises(ToylabError, match=p.flag):
        RunConfig(**{p.name: int(p.minimum) - 1}).validate()
    with pytest.raises(ToylabError, match=p.flag):
        RunConfig(**{p.name: 2.5}).validate()


@pytest.mark.parametrize("p", [p for p in params.CONFIG_PARAMS if p.kind == "choice"], ids=str)
def test_choices_are_enforced(p):
    with pytest.raises(ToylabError, match="choose from: " + ", ".join(p.choices)):
        RunConfig(**{p.name: "nonsense"}).validate()
    for choice in p.choices:
        if p.name == "beta_schedule" and choice == "geometric":
            RunConfig(beta_schedule=choice, beta_start=1.0).validate()
        else:
            RunConfig(**{p.name: choice}).validate()


def test_fit_takes_every_config_parameter_as_a_keyword():
    kwargs = {p.name: p.default for p in params.CONFIG_PARAMS if p.name not in ("targets",)}
    kwargs.update(nodes=20, steps=2, frames=0, methods="gd")
    result = toylab.fit("gaussian", **kwargs)
    assert result.config.steps == 2
    with pytest.raises(ToylabError, match="--batch"):
        toylab.fit("gaussian", nodes=20, steps=2, batch=0)


def test_method_all_and_a_suggestion_for_a_near_miss():
    everything = RunConfig(methods="all").validate().methods
    assert everything == method_names() and {"gd", "sp", "soft", "kmeans"} <= set(everything)
    with pytest.raises(ToylabError, match="did you mean sp"):
        RunConfig(methods="sp,spp").validate()
    with pytest.raises(ToylabError, match="did you mean kmeans"):
        RunConfig(methods="k-means").validate()


def test_rules_between_parameters():
    with pytest.raises(ToylabError, match="--lr"):
        RunConfig(optimizer="sgd", lr=2.0).validate()
    RunConfig(optimizer="adam", lr=2.0).validate()
    with pytest.raises(ToylabError, match="--beta-end"):
        RunConfig(beta_start=5.0, beta_end=1.0).validate()


def test_validation_is_idempotent_and_canonical():
    cfg = RunConfig(methods="gd, sp", targets="gaussian,qr", nodes=50.0).validate()
    assert cfg.methods == ["gd", "sp"] and cfg.targets == ["gaussian", "qr"] and cfg.nodes == 50
    assert cfg.validate().to_dict() == cfg.to_dict()
    assert "checked" not in cfg.to_dict()
