import pytest

from p2penergy.scenario import generate, load_scenario


@pytest.fixture(scope="session")
def shipped():
    return load_scenario()


@pytest.fixture(scope="session")
def community(shipped):
    return generate(shipped)
