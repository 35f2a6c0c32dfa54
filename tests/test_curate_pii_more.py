"""PII recall on names in scripts with combining marks and on short copyright marks, and precision
on digit groups next to a phone word, Luhn-valid design constants and version numbers
(sft_playbook/curate/pii.py)."""
from __future__ import annotations

import pytest

from sft_playbook.curate.pii import Redactor, code_numbers


# -- names whose letters carry combining marks (Unicode Mn/Mc) --------------------------------------
@pytest.mark.parametrize("comment,names", [
    ("// Author: राहुल शर्मा", ["राहुल शर्मा"]),                         # Devanagari
    ("// Author: সৌরভ গাঙ্গুলী", ["সৌরভ গাঙ্গুলী"]),                    # Bengali
    ("// Copyright (c) 2018 முருகன் செல்வம்", ["முருகன் செல்வம்"]),     # Tamil
    ("// Author: สมชาย ใจดี", ["สมชาย ใจดี"]),                          # Thai
    ("/* Written by ಅನಿಲ್ ಕುಮಾರ್ and വിനോദ് നായർ */", ["ಅನಿಲ್ ಕುಮಾರ್", "വിനോദ് നായർ"]),   # Kannada, Malayalam
    ("// Maintainer: ప్రసాద్ రెడ్డి", ["ప్రసాద్ రెడ్డి"]),                # Telugu
])
def test_names_with_combining_marks_are_redacted_whole(red, comment, names):
    out, counts = red.redact_code(comment + "\nassign y = a & b;\nendmodule")
    assert counts.get("name") == len(names), out
    for name in names:
        for ch in name.replace(" ", ""):
            assert ch not in out, (ch, out)


# -- the short copyright mark -------------------------------------------------------------------------
@pytest.mark.parametrize("comment,names", [
    ("// (c) 2021 John Smith, all rights reserved", ["John Smith"]),
    ("// (C) 2021 Søren Ørsted", ["Søren Ørsted"]),
    ("/* (c) 2019-2021 Ana Lima and Rui Costa */", ["Ana Lima", "Rui Costa"]),
    ("// (c) Jane Doe", ["Jane Doe"]),                                     # the mark opens the comment
    ("#(c) 2020 Ingrid Bergström", ["Ingrid Bergström"]),
])
def test_short_copyright_marks_introduce_names(red, comment, names):
    out, counts = red.redact(comment)
    assert counts.get("name") == len(names), out
    for name in names:
        assert name.split()[-1] not in out


@pytest.mark.parametrize("text", ["Select one of (a), (b), (c) Then latch it.", "// f(c) Returns the carry",
                                  "// (c) 2019 Xilinx, Inc."])
def test_a_c_in_parentheses_in_prose_is_not_a_copyright_mark(red, text):
    out, counts = red.redact(text)
    assert "name" not in counts and out == text


# -- phones: a context word does not make digit groups a phone -------------------------------------
@pytest.mark.parametrize("text", [
    "// Mobile 3 phase PWM: duty 0250 0500 0750",
    "// call rate table: 1200 2400 4800 9600",
    "// cell values 0101 0110 0111 1000 for the mobile robot",
    "// fax modem tones 1100 2100 1300",
])
def test_digit_groups_next_to_a_phone_word_are_not_phones(red, text):
    out, counts = red.redact(text)
    assert "phone" not in counts and "<PHONE>" not in out


def test_phones_written_as_phones_are_still_redacted():
    r = Redactor("presidio")
    for text in ("Mobile: 015123456789", "phone 4155550132", "tel. +44 20 7946 0958", "ring 0049 30 901820",
                 "questions: 0044 20 7946 0958"):
        out, counts = r.redact(text)
        assert counts == {"phone": 1}, (text, out)


# -- credit cards: a Luhn-valid constant is not a card ----------------------------------------------
@pytest.mark.parametrize("text", [
    "// 2^45 = 35184372088832 cycles before wrap",
    "// the 47 bit counter wraps after 70368744177664 clocks",
    "A fixed point e: 2718281828459045 scaled by 10^15.",
])
def test_luhn_valid_constants_are_not_cards(red, text):
    red.rejected = {}
    out, counts = red.redact(text)
    assert "credit_card" not in counts and out == text


def test_a_card_number_the_code_uses_is_not_a_card():
    r = Redactor("presidio")
    out, counts = r.redact("Visa test vector 4111111111111111 is loaded.", code_numbers("localparam V = 64'd4111111111111111;"))
    assert counts == {} and r.rejected.get("credit_card_in_code") == 1


def test_cards_written_as_cards_are_still_redacted():
    r = Redactor("presidio")
    for text in ("pay with 4111 1111 1111 1111 today", "card: 4111111111111111", "amex 3782-822463-10005"):
        out, counts = r.redact(text)
        assert counts == {"credit_card": 1}, (text, out)


# -- IP addresses: a version number is not one ---------------------------------------------------------
@pytest.mark.parametrize("text", ["// default version 1.2.3.4", "// rev: 2.0.1.7 of the core", "Release 10.2.0.1 fixes the FIFO",
                                  "// firmware 4.4.0.12 required"])
def test_version_numbers_are_not_ip_addresses(red, text):
    out, counts = red.redact(text)
    assert "ip" not in counts and out == text


def test_ip_addresses_are_still_redacted(red):
    out, counts = red.redact("// default ip 192.168.1.10 version 1.2.3.4; gateway 10.0.0.1")
    assert counts == {"ip": 2} and out == "// default ip <IP_ADDRESS> version 1.2.3.4; gateway <IP_ADDRESS>"
