"""Settings: defaults, the commented default file, and clear messages for typos and wrong types."""

from __future__ import annotations

from pathlib import Path

import pytest

from rootscope.config import CONFIG_NAME, Config, Rect, default_config_text, load_config
from rootscope.errors import ConfigError


def write(folder: Path, text: str) -> Path:
    path = folder / CONFIG_NAME
    path.write_text(text, encoding="utf-8")
    return path


def test_default_text_parses_to_the_defaults(tmp_path):
    assert load_config(write(tmp_path, default_config_text())) == Config()


def test_a_folder_without_config_gives_the_defaults(tmp_path):
    assert load_config(tmp_path) == Config()


def test_a_typo_names_the_key_the_file_and_the_right_key(tmp_path):
    path = write(tmp_path, '[align]\nrefrence = "last"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message
    assert "'align.refrence'" in message
    assert "Did you mean 'align.reference'?" in message


def test_a_top_level_typo_suggests_the_right_key(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'px_per_m'\. Did you mean 'px_per_mm'\?"):
        load_config(write(tmp_path, "px_per_m = 23.6\n"))


def test_a_typo_inside_a_plate_region_is_caught(tmp_path):
    text = "[regions.A01]\nroot_zon = {x = 0, y = 0, width = 10, height = 10}\n"
    with pytest.raises(ConfigError, match=r"Did you mean 'regions\.A01\.root_zone'\?"):
        load_config(write(tmp_path, text))


def test_a_wrong_type_names_the_key_the_value_and_an_example(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, '[align]\nmax_side = "big"\n'))
    message = str(err.value)
    assert "align.max_side = 'big'" in message
    assert "valid integer" in message
    assert "max_side = 1024" in message


def test_a_negative_scale_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"px_per_mm = -3"):
        load_config(write(tmp_path, "px_per_mm = -3\n"))


def test_broken_toml_names_the_file(tmp_path):
    path = write(tmp_path, "[align\n")
    with pytest.raises(ConfigError, match="not valid TOML") as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_flat_pattern_needs_a_plate_group(tmp_path):
    with pytest.raises(ConfigError, match=r"\(\?P<plate>"):
        load_config(write(tmp_path, '[input]\nflat_pattern = "(?P<species>\\\\w+)"\n'))


def test_regions_per_plate_fall_back_to_default(tmp_path):
    text = (
        "[regions.default]\nroot_zone = [0, 100, 50, 60]\n"
        "[regions.A01]\nshoot_zone = {x = 5, y = 0, width = 20, height = 10}\n"
    )
    config = load_config(write(tmp_path, text))
    assert config.regions_for("B07").root_zone == Rect(x=0, y=100, width=50, height=60)
    assert set(config.regions_for("A01").given()) == {"shoot_zone"}
    rows, cols = config.regions_for("A01").shoot_zone.slices()
    assert (rows, cols) == (slice(0, 10), slice(5, 25))


def test_model_paths_are_relative_to_the_config_file(tmp_path):
    config = load_config(write(tmp_path, '[models]\npixel = "models/rf.model"\n'))
    assert config.models.pixel == (tmp_path / "models" / "rf.model").resolve()


def test_section_hash_changes_only_with_its_section():
    a, b = Config(), Config()
    b.architecture.min_plant_length_mm = 5.0
    assert a.section_hash("align") == b.section_hash("align")
    assert a.section_hash("architecture") != b.section_hash("architecture")


def test_init_writes_the_commented_defaults_and_run_refuses_a_typo(tmp_path, capsys):
    from rootscope.cli import main

    folder = tmp_path / "exp"
    assert main(["init", str(folder)]) == 0
    assert (folder / "raw").is_dir() and load_config(folder) == Config()
    assert main(["init", str(folder)]) == 2  # an existing config is never overwritten
    write(folder, '[models]\npixel = "rf.model"\n[align]\nrefrence = "first"\n')
    assert main(["run", str(folder)]) == 2
    assert "Did you mean 'align.reference'?" in capsys.readouterr().err


def test_a_memory_limit_must_be_an_amount(tmp_path):
    with pytest.raises(ConfigError, match=r"batch.memory_limit = 'lots'.*e.g. \"4GB\""):
        load_config(write(tmp_path, '[batch]\nmemory_limit = "lots"\n'))
    assert load_config(write(tmp_path, '[batch]\nmemory_limit = "6GB"\n')).batch.memory_limit == "6GB"


def test_track_gates_are_read_and_must_be_positive(tmp_path):
    assert load_config(write(tmp_path, "[track]\nroot_gate_mm = 2.5\n")).track.root_gate_mm == 2.5
    with pytest.raises(ConfigError, match=r"track\.plant_gate_mm"):
        load_config(write(tmp_path, "[track]\nplant_gate_mm = 0\n"))
