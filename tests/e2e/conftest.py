"""Session fixtures for the end-to-end suite (see helpers.py for the environment it needs)."""

from __future__ import annotations

import os
import secrets

import pytest

from helpers import BASE_URL, Person, client, create_user


def pytest_collection_modifyitems(config, items):
    if not BASE_URL:
        skip = pytest.mark.skip(reason="E2E_BASE_URL is not set: run `make e2e` or `make test`")
        for item in items:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def run_id() -> str:
    """A per-run prefix, so each test's users are found by search whatever else is in the table."""
    return "e2e" + secrets.token_hex(3)


@pytest.fixture(scope="session")
def admin_token() -> str:
    return os.environ["E2E_ADMIN_TOKEN"]


@pytest.fixture(scope="session")
def admin_api(admin_token):
    with client(token=admin_token) as api_client:
        yield api_client.users_api


FIRST_NAMES = ["Ann", "Bob", "Cid"]
LAST_NAMES = ["Smith", "Jones"]


@pytest.fixture(scope="session")
def people(run_id) -> list[Person]:
    """Twelve users, created in id order: <run>_u00 … <run>_u11."""
    return [
        create_user(
            f"{run_id}_u{i:02d}",
            first_name=FIRST_NAMES[i % 3],
            last_name=LAST_NAMES[i % 2],
            email=f"{run_id}.u{i:02d}@example.com",
        )
        for i in range(12)
    ]


@pytest.fixture(scope="session")
def member(run_id) -> Person:
    """A regular (non-admin) user with an API token."""
    return create_user(f"{run_id}_member", first_name="Mem", last_name="Ber",
                       email=f"{run_id}.member@example.com", token=True)


@pytest.fixture(scope="session")
def member_api(member):
    with client(token=member.token) as api_client:
        yield api_client.users_api


class _FaultTestsLast:
    """tests/e2e/test_faults.py breaks DynamoDB on purpose (through the fault proxy, see
    scripts/e2e.sh): run it after every other test, so a proxy left failing could not hurt them.
    Before it, the fuzzing (tests/e2e/test_openapi.py): what it creates (users and groups with
    random names and attributes) is then in no other suite's way."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items):
        items.sort(key=lambda item: (item.path.name == "test_faults.py",
                                     item.name.startswith("test_fuzzing")))


def pytest_configure(config):
    config.pluginmanager.register(_FaultTestsLast(), "e2e-fault-tests-last")


def pytest_terminal_summary(terminalreporter):
    from helpers import FAULT_REPORT

    if FAULT_REPORT:
        terminalreporter.section("DynamoDB faults (tests/e2e/test_faults.py)")
        for line in FAULT_REPORT:
            terminalreporter.write_line(line)
    from helpers import FUZZ_REPORT

    if FUZZ_REPORT:
        terminalreporter.section("fuzzing (tests/e2e/test_openapi.py, schemathesis)")
        for line in FUZZ_REPORT:
            terminalreporter.write_line(line)
    from helpers import EVENTS_REPORT

    if EVENTS_REPORT:
        terminalreporter.section("change events (tests/e2e/test_events.py)")
        for line in EVENTS_REPORT:
            terminalreporter.write_line(line)
