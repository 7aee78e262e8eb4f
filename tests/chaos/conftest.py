"""The chaos tier's marker, registered here so this folder stands on its own."""

CHAOS_MARKER = "chaos: a seeded chaos run against real site processes (tests/chaos)"


def pytest_configure(config):
    config.addinivalue_line("markers", CHAOS_MARKER)
