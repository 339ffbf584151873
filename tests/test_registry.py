import pytest

from lsnas.data.indexed import SOURCES
from lsnas.errors import ConfigError
from lsnas.registry import Registry
from lsnas.spaces.base import SPACES


def test_register_get_and_list_by_pattern():
    reg = Registry("proxy", setting="proxy.name")
    for name in ("ntk_cond", "ntk_trace", "naswot"):
        reg.register(name)(len)
    assert reg.get("naswot") is len and reg.names() == ["naswot", "ntk_cond", "ntk_trace"]
    assert reg.names("ntk_*") == ["ntk_cond", "ntk_trace"] and "naswot" in reg


def test_a_duplicate_name_is_an_error_and_an_unknown_one_names_the_setting():
    reg = Registry("strategy", setting="method")
    reg.register("random")(int)
    reg.register("random")(int)  # the same object again (a module imported twice) is fine
    with pytest.raises(ValueError, match="'random' is registered twice"):
        reg.register("random")(float)
    with pytest.raises(ConfigError, match=r"unknown strategy 'evo' \(setting: method\); known: random"):
        reg.get("evo")


def test_spaces_and_proxy_sources_share_it():
    assert "darts" in SPACES.names()
    assert SOURCES.names() == ["imagenet1k", "imagenet22k", "tiny_imagenet"]
    with pytest.raises(ConfigError, match="dataset.source"):
        SOURCES.get("imagenet9k")
