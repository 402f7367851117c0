import pytest

from src.kaggle_access import explain, kaggle_credentials_found


@pytest.mark.parametrize(
    "environ",
    [{"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k"}, {"KAGGLE_API_TOKEN": "t"}],
)
def test_credentials_in_the_environment(environ, tmp_path):
    assert kaggle_credentials_found(environ, home=tmp_path)


@pytest.mark.parametrize(
    "file", [".kaggle/kaggle.json", ".config/kaggle/kaggle.json", ".kaggle/access_token", ".kaggle/credentials.json"]
)
def test_credentials_in_files(file, tmp_path):
    assert not kaggle_credentials_found({}, home=tmp_path)
    (tmp_path / file).parent.mkdir(parents=True)
    (tmp_path / file).write_text("{}")
    assert kaggle_credentials_found({}, home=tmp_path)


def test_kaggle_config_dir_replaces_the_default_folders(tmp_path):
    (tmp_path / ".kaggle").mkdir()
    (tmp_path / ".kaggle" / "kaggle.json").write_text("{}")
    assert not kaggle_credentials_found({"KAGGLE_CONFIG_DIR": str(tmp_path / "elsewhere")}, home=tmp_path)


def test_a_username_alone_is_not_credentials(tmp_path):
    assert not kaggle_credentials_found({"KAGGLE_USERNAME": "u"}, home=tmp_path)


def test_explain_says_what_to_do():
    assert "https://www.kaggle.com/settings/api" in explain(401, "digit-recognizer", None)
    assert "https://www.kaggle.com/competitions/digit-recognizer/rules" in explain(403, "digit-recognizer", None)
    assert "check data.competition" in explain(404, "digit-recognizer", None)
