"""The API reference in a browser: each operation shows its curl command and example bodies,
readable on a desktop and on a 390 px phone without sideways scrolling."""

from __future__ import annotations

import os

import pytest

SHOTS = os.environ.get("RENDEZVOUS_SCREENSHOTS")


@pytest.mark.parametrize("width", [1280, 390], ids=["desktop", "phone"])
def test_docs_show_examples_and_curl(page, width):
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/api/v1/docs")
    operation = page.locator("article#create_interview")
    operation.scroll_into_view_if_needed()
    curl = operation.locator("pre", has=page.locator("code")).first
    assert operation.get_by_role("heading", name="Example with curl").is_visible()
    assert curl.inner_text().startswith('curl -X POST "$RENDEZVOUS_URL/api/v1/interviews"')
    request = operation.locator("pre").nth(1).inner_text()
    assert '"title": "Onsite: Senior Backend Engineer"' in request
    response = operation.locator("pre").nth(2).inner_text()
    assert '"in_calendar": false' in response
    assert operation.get_by_role("heading", name="Example response (201)").is_visible()
    # Field descriptions are in the schema tables.
    row = page.locator(
        "#schema-Interview tr", has=page.get_by_role("rowheader", name="in_calendar")
    )
    assert "read from the calendar event" in row.inner_text()
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{overflow}px of sideways scrolling at {width}px"
    if SHOTS:
        operation.screenshot(path=os.path.join(SHOTS, f"api-docs-{width}.png"))
