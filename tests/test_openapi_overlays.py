from pathlib import Path

import pytest
import yaml

from mcp_anything.config import ConfigError
from tests.support.openapi import SPECS, load

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "overlays").glob("*.yaml"))


def write_overlay(tmp_path: Path, actions: list, name: str = "o.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"overlay": "1.0.0", "info": {"title": "t", "version": "1"}, "actions": actions}))
    return str(path)


def test_example_overlays_apply_to_the_pets_spec() -> None:
    result = load(SPECS / "pets.yaml", overlays=[str(p) for p in EXAMPLES])
    tools = {t.name: t for t in result.tools}
    assert {"pets_get", "pets_list"} <= set(tools)
    assert tools["pets_list"].description.startswith("Search the pet store.")
    assert tools["pets_create_pet"].input_schema["properties"]["name"]["description"].startswith("The pet's display")
    assert tools["pets_get_tree"].auth_required is False
    assert tools["pets_get_tree"].annotations["openWorldHint"] is False
    assert ("POST /admin/reset", "x-mcp-hidden") in result.skipped


def test_update_merges_appends_and_remove_deletes(tmp_path) -> None:
    overlay = write_overlay(
        tmp_path,
        [
            {"target": "$.paths['/pets'].get.parameters", "update": {"name": "extra", "in": "query", "schema": {}}},
            {"target": "$.paths['/pets'].get", "update": {"x-mcp-name": "everything", "summary": "All."}},
            {"target": "$.paths['/trees']", "remove": True},
            {"target": "$.paths.*.*.parameters[?(@.name == 'X-Request-Id')]", "remove": True},
        ],
    )
    tools = {t.name: t for t in load(SPECS / "pets.yaml", overlays=[overlay]).tools}
    listing = tools["pets_everything"]
    assert "extra" in listing.input_schema["properties"] and "X-Request-Id" not in listing.input_schema["properties"]
    assert listing.description.startswith("All.")
    assert "pets_get_tree" not in tools


def test_overlays_apply_in_order(tmp_path) -> None:
    first = write_overlay(tmp_path, [{"target": "$.paths['/trees'].get", "update": {"x-mcp-name": "a"}}], "1.yaml")
    second = write_overlay(tmp_path, [{"target": "$.paths['/trees'].get", "update": {"x-mcp-name": "b"}}], "2.yaml")
    names = {t.name for t in load(SPECS / "pets.yaml", overlays=[first, second]).tools}
    assert "pets_b" in names and "pets_a" not in names


def test_a_target_matching_nothing_names_the_overlay_and_the_action(tmp_path) -> None:
    overlay = write_overlay(
        tmp_path,
        [
            {"target": "$.paths['/trees'].get", "update": {"x-mcp-hidden": True}},
            {"target": "$.paths['/nope'].get", "description": "hide nope", "update": {"x-mcp-hidden": True}},
            {"target": "$.paths['/gone']", "remove": True, "x-mcp-optional": True},
        ],
    )
    with pytest.raises(ConfigError) as error:
        load(SPECS / "pets.yaml", overlays=[overlay])
    assert error.value.problems == [
        f"upstreams[0].overlays[0]: {overlay}: actions[1] (hide nope): target \"$.paths['/nope'].get\" matches "
        "nothing (set `x-mcp-optional: true` if that is expected)"
    ]


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"target": "$.info", "udpate": {}}, "actions[0]: unknown key(s) ['udpate']"),
        ({"target": "info", "update": {}}, "actions[0]: `target` must be a JSONPath starting with `$`"),
        ({"target": "$.info"}, "actions[0]: an action needs `update` or `remove: true`"),
        ({"target": "$.paths[[", "update": {}}, "actions[0]: invalid JSONPath"),
    ],
)
def test_invalid_actions(tmp_path, action, message) -> None:
    overlay = write_overlay(tmp_path, [action])
    with pytest.raises(ConfigError) as error:
        load(SPECS / "pets.yaml", overlays=[overlay])
    assert error.value.problems[0].startswith(f"upstreams[0].overlays[0]: {overlay}: {message}")


def test_missing_or_invalid_overlay_files(tmp_path) -> None:
    (tmp_path / "bad.yaml").write_text("openapi: 3.0.0\n")
    with pytest.raises(ConfigError) as error:
        load(SPECS / "pets.yaml", overlays=[str(tmp_path / "missing.yaml"), str(tmp_path / "bad.yaml")])
    assert error.value.problems == [
        f"upstreams[0].overlays[0]: {tmp_path / 'missing.yaml'}: file not found",
        f"upstreams[0].overlays[1]: {tmp_path / 'bad.yaml'}: not an Overlay 1.0 document: expected `overlay: 1.0.0` "
        "at the top",
    ]


def test_overlays_apply_to_swagger_2_as_written(tmp_path) -> None:
    overlay = write_overlay(tmp_path, [{"target": "$.definitions.Pet.properties.name", "update": {"maxLength": 3}}])
    tools = {t.name: t for t in load(SPECS / "swagger2.yaml", overlays=[overlay]).tools}
    assert tools["pets_update_pet"].input_schema["properties"]["name"]["maxLength"] == 3
