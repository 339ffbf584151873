import json

import pytest

from lsnas.arch import Architecture, ArchitectureError, from_zoo, resolve_arch, zoo_names

V2 = from_zoo("darts_v2")


def test_round_trip(tmp_path):
    path = V2.save(tmp_path / "arch.json")
    loaded = Architecture.load(path)
    assert loaded == V2 and hash(loaded) == hash(V2)
    assert loaded.to_json() == V2.to_json()
    assert resolve_arch(tmp_path) == V2  # a run dir holding arch.json
    assert resolve_arch(str(path)) == V2


def test_canonical_equality_ignores_edge_order_and_key_order():
    g = V2.genotype
    g["normal"][0], g["normal"][1] = g["normal"][1], g["normal"][0]  # swap a node's two edges
    g["reduce_concat"] = [5, 4, 3, 2]
    shuffled = dict(reversed(list(g.items())))
    other = Architecture("darts", shuffled)
    assert other == V2 and other.to_json() == V2.to_json() and other.digest == V2.digest
    assert len({V2, other, from_zoo("DARTS_V2")}) == 1


def test_different_architectures_differ():
    assert from_zoo("darts_v1") != V2
    assert V2.digest != from_zoo("darts_v1").digest


def test_value_is_immutable():
    g = V2.genotype
    original = g["normal"][0][0]
    g["normal"][0][0] = "max_pool_3x3" if original != "max_pool_3x3" else "sep_conv_5x5"
    assert V2.genotype["normal"][0][0] == original  # mutating the copy leaves the value alone
    assert V2 == from_zoo("darts_v2")


def test_zoo_names_are_case_insensitive():
    assert {"darts_v1", "darts_v2", "pc_darts_cifar", "pc_darts_imagenet", "p_darts", "gdas"} <= set(zoo_names())
    assert resolve_arch("DARTS_V2") == resolve_arch("darts-v2") == V2


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ArchitectureError, match="unknown architecture 'dartz'.*darts_v2.*pc_darts_cifar"):
        resolve_arch("dartz")


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('["darts"]', "expected a JSON object"),
    ('{"space": "darts"}', "missing key"),
    ('{"space": "nope", "genotype": {}}', "unknown search space 'nope'"),
    ('{"space": "darts", "genotype": {"normal": []}}', "missing 'normal_concat'"),
])
def test_malformed_files_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "arch.json"
    path.write_text(content)
    with pytest.raises(ArchitectureError, match=message) as err:
        Architecture.load(path)
    assert str(path) in str(err.value)


def test_malformed_genotypes_say_what_is_wrong(tmp_path):
    g = V2.genotype
    g["normal"][2] = ["conv_9x9", 0]
    with pytest.raises(ArchitectureError, match="unknown op 'conv_9x9'"):
        Architecture.from_dict({"space": "darts", "genotype": g})
    g = V2.genotype
    g["normal"][0] = ["sep_conv_3x3", 3]  # node 0 can only read inputs 0 and 1
    with pytest.raises(ArchitectureError, match=r"input must be an int in \[0, 1\]"):
        Architecture.from_dict({"space": "darts", "genotype": g})


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ArchitectureError, match="no such architecture file"):
        resolve_arch(tmp_path / "nope" / "arch.json")


def test_saved_file_is_readable_json(tmp_path):
    data = json.loads(V2.save(tmp_path / "a.json").read_text())
    assert data["space"] == "darts" and set(data["genotype"]) == {"normal", "normal_concat", "reduce",
                                                                  "reduce_concat"}
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temp file
