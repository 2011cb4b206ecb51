"""The pasted or uploaded list of mailboxes: CSV with a header (email, name, timezone), bare
addresses and "Name <email>" lines; a reason for every line that cannot be used; at most
20,000 entries."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp.services.enterprise.address_list import (
    MAX_ADDRESSES,
    Address,
    TooManyAddresses,
    parse,
)
from webapp.services.errors import Invalid


def test_csv_with_a_header_gives_email_name_and_time_zone():
    text = (
        "Name,Email,Department,TimeZone\n"
        "Ann Lee,Ann.Lee@Fabrikam.example,Sales,Europe/London\n"
        '"Becker, Anna",anna.becker@fabrikam.example,,\n'
        "Carl,carl@fabrikam.example,Ops,UTC\n"
    )
    result = parse(text)
    assert result.refused == ()
    assert result.addresses == (
        Address("ann.lee@fabrikam.example", "Ann Lee", "Europe/London", 2),
        Address("anna.becker@fabrikam.example", "Becker, Anna", None, 3),
        Address("carl@fabrikam.example", "Carl", "Etc/UTC", 4),  # a UTC alias, normalised
    )


def test_header_columns_may_come_in_any_order_and_spelling():
    result = parse("E-mail address;x\n".replace(";", ",") + "dora@fabrikam.example,whatever\n")
    assert result.addresses == (Address("dora@fabrikam.example", None, None, 2),)
    result = parse("time zone,display name,mail\nAmerica/New_York,Eve,eve@f.example\n")
    assert result.addresses == (Address("eve@f.example", "Eve", "America/New_York", 2),)


def test_each_unusable_row_gets_its_own_reason_and_line():
    text = (
        "email,name,timezone\n"
        "ok@f.example,Ok,Europe/Berlin\n"
        "bad@f.example,Bad,Mars/Olympus\n"
        ",No Address,Europe/Berlin\n"
        "not-an-address,Nobody,\n"
        f"long@f.example,{'x' * 201},\n"
    )
    result = parse(text)
    assert result.addresses == (Address("ok@f.example", "Ok", "Europe/Berlin", 2),)
    assert [(r.line, r.reason) for r in result.refused] == [
        (3, "unknown time zone (use an IANA name such as Europe/London)"),
        (4, "no email address"),
        (5, "not a valid email address"),
        (6, "name longer than 200 characters"),
    ]
    assert result.refused[0].text == "bad@f.example,Bad,Mars/Olympus"


def test_headerless_lines_take_bare_addresses_and_name_angle_forms():
    text = (
        "ann@f.example\n"
        "Ben Okafor <Ben@F.example>\n"
        '"Lee, Chi" <chi@f.example>, dan@f.example; eve@f.example\n'
        "\n"
        "   \n"
        "frank@f.example gina@f.example\n"
        "not an address\n"
        "Broken <hal@f.example\n"
    )
    result = parse(text)
    assert result.addresses == (
        Address("ann@f.example", None, None, 1),
        Address("ben@f.example", "Ben Okafor", None, 2),
        Address("chi@f.example", "Lee, Chi", None, 3),
        Address("dan@f.example", None, None, 3),
        Address("eve@f.example", None, None, 3),
        Address("frank@f.example", None, None, 6),
        Address("gina@f.example", None, None, 6),
    )
    assert [(r.line, r.text, r.reason) for r in result.refused] == [
        (7, "not an address", "not a valid email address"),
        (8, "Broken <hal@f.example", "not a valid email address"),
    ]


def test_name_email_in_the_email_column_and_windows_line_ends():
    text = "email,timezone\r\nIda Roy <ida@f.example>,Asia/Tokyo\r\n"
    assert parse(text).addresses == (Address("ida@f.example", "Ida Roy", "Asia/Tokyo", 2),)


def test_duplicates_are_kept_for_the_service_to_report():
    # The parser reads; deciding that a repeat is "listed more than once" is the request's job
    # (it also sees checkboxes and API lists), so both entries come through with their lines.
    result = parse("a@f.example\nA@f.example\n")
    assert [(a.email, a.line) for a in result.addresses] == [
        ("a@f.example", 1),
        ("a@f.example", 2),
    ]


def test_control_characters_never_reach_a_name_or_a_shown_line():
    result = parse('email,name\nx@f.example,"Ann\x07\tLee"\nbad\x1b[31m,x\n')
    assert result.addresses[0].name == "Ann Lee"
    assert result.refused[0].text == "bad[31m,x"


def test_an_unclosed_quote_is_refused_with_the_line_not_a_crash():
    text = "email\n" + '"' + "a" * 200_000 + "\n"
    with pytest.raises(Invalid, match="from line 2"):
        parse(text)


def test_twenty_thousand_entries_are_accepted_and_one_more_is_refused_whole():
    lines = [f"Person {i} <p{i}@f.example>" for i in range(MAX_ADDRESSES)]
    assert len(parse("\n".join(lines)).addresses) == MAX_ADDRESSES
    with pytest.raises(TooManyAddresses) as refused:
        parse("\n".join([*lines, "one.more@f.example"]))
    assert "more than 20,000 addresses" in refused.value.message
    assert "Nothing was sent" in refused.value.message
    # Unusable entries count too: a list cannot make the parser hold more than the limit.
    with pytest.raises(TooManyAddresses):
        parse("\n".join(["junk"] * (MAX_ADDRESSES + 1)))


_local = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}[a-z0-9]", fullmatch=True).filter(
    lambda s: ".." not in s
)
_names = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters='"<>,\\'
    ),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip() and "@" not in s and "(" not in s and ")" not in s)
_zones = st.sampled_from(["Europe/London", "America/New_York", "Asia/Kolkata", None])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_local, _names, _zones), min_size=1, max_size=30))
def test_a_written_csv_reads_back_as_written(people):
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["email", "name", "timezone"])
    for local, name, zone in people:
        writer.writerow([f"{local}@f.example", name, zone or ""])
    result = parse(out.getvalue())
    assert result.refused == ()
    assert [(a.email, a.name, a.timezone) for a in result.addresses] == [
        (f"{local}@f.example", " ".join(name.split()), zone) for local, name, zone in people
    ]


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=400))
def test_any_text_parses_into_addresses_and_reasons_or_a_clear_refusal(text):
    try:
        result = parse(text)
    except Invalid as exc:
        assert "Nothing was sent" in exc.message
        return
    for address in result.addresses:
        assert address.email == address.email.lower() and "@" in address.email
    for refusal in result.refused:
        assert refusal.reason and refusal.line >= 1 and len(refusal.text) <= 300
