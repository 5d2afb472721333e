"""The docs work as written: every shell block of the README, the user guide and the topic pages
runs on a simulated box (see ``tests/docs/runner.py`` for what runs, how, and what is skipped
and why).

The README and the user guide each run from an empty box, in order. A topic page (drying,
notifications, ...) assumes a box set up as the user guide's "First configuration" section
leaves it (configured, its service running): that section's blocks prepare its box first.
Each test prints every command with what happened to it (ran, skipped and why, failed).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.capture import CaptureServer
from tests.docs.runner import Command, DocRun, commands_of, extract_blocks
from tests.helpers import REPO
from tests.servers import unavailable

pytestmark = pytest.mark.slow

README = REPO / "README.md"
GUIDE = REPO / "docs" / "user-guide.md"
SETUP_SECTION = "## First configuration"
# Topic pages, and whether their box is prepared as the user guide's First configuration leaves
# it (the pages whose commands need a configured box with a running service).
TOPICS = {
    "drying.md": True,
    "notifications.md": True,
    "operations.md": False,
    "home-assistant.md": False,
    "web.md": False,
    "control.md": False,
}


@pytest.fixture(scope="module")
def receiver() -> Iterator[CaptureServer]:
    """Where the docs' notification URL points: a real loopback receiver of Apprise's json://."""
    with CaptureServer() as server:
        yield server


@pytest.fixture(scope="module", autouse=True)
def _jq() -> None:
    if shutil.which("jq") is None:
        unavailable("jq is not installed (the docs pipe --json output into it; apt install jq)")


def first_configuration() -> list[Command]:
    """The commands of the user guide's First configuration section, in order."""
    text = GUIDE.read_text(encoding="utf-8")
    lines = text.splitlines()
    start = lines.index(SETUP_SECTION) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    blocks = [b for b in extract_blocks(text, "docs/user-guide.md") if start < b.line <= end]
    return [c for b in blocks if b.lang in ("sh", "bash") for c in commands_of(b)]


def check(run: DocRun, ran_at_least: int) -> None:
    print(run.report())
    failures = run.failures()
    assert not failures, f"{len(failures)} doc command(s) failed:\n" + "\n".join(
        str(f) for f in failures
    )
    ran = sum(1 for o in run.outcomes if o.status == "ran")
    assert ran >= ran_at_least, f"only {ran} commands ran: is the extractor still finding them?"


def test_the_readme_runs_on_a_simulated_box(receiver: CaptureServer) -> None:
    run = DocRun({"notify_url": receiver.url("readme")})
    run.run_document(README)
    check(run, ran_at_least=15)
    # 'notify test' reached the URL the README had us paste.
    assert any(post.path == "/readme" for post in receiver.posts), receiver.posts


def test_the_user_guide_runs_on_a_simulated_box(receiver: CaptureServer) -> None:
    run = DocRun({"notify_url": receiver.url("guide")})
    run.run_document(GUIDE)
    check(run, ran_at_least=25)


def test_the_first_configuration_section_is_found() -> None:
    """The topic pages' setup is the user guide's section itself, not a copy of it."""
    texts = [c.text.split("#")[0].strip() for c in first_configuration()]
    assert texts[0] == "filamentctl config init"
    assert "filamentctl run" in texts
    assert any(t.startswith("filamentctl config set heater.min_temp_c 45") for t in texts)


@pytest.mark.parametrize("name", sorted(TOPICS))
def test_a_topic_page_runs_on_a_box_set_up_as_in_the_user_guide(
    name: str, receiver: CaptureServer
) -> None:
    run = DocRun({"notify_url": receiver.url(name)})
    run.run_document(REPO / "docs" / name, setup=first_configuration() if TOPICS[name] else ())
    check(run, ran_at_least=0)
