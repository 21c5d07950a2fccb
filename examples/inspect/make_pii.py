#!/usr/bin/env python3
"""Builds pii-eval.jsonl: synthetic sentences with labelled personal data and secrets, and
look-alikes that are not (order numbers, versions, dates without context, bad checksums).

Seeded and self-contained (no network): `python3 examples/inspect/make_pii.py`. Spans are
character offsets, the format `sluice inspect eval` reads. The values are generated here,
independently of Sluice's detectors: valid checksums are computed, invalid ones perturbed.
"""

import json
import random
import string
from pathlib import Path

rng = random.Random(20261125)

FIRST = ["jane", "omar", "li", "sofia", "ravi", "anna", "mateo", "chloe", "yuki", "ade",
         "lars", "fatima", "noah", "ines", "kwame", "mia", "ivan", "zoe", "tariq", "elena"]
LAST = ["doe", "haddad", "wei", "rossi", "patel", "nowak", "garcia", "martin", "sato",
        "okafor", "berg", "khan", "smith", "silva", "mensah", "keller", "petrov", "laurent"]
DOMAINS = ["example.com", "mail.example.org", "corp.example.net", "uni.example.ac.uk",
           "example.de", "shop.example.io", "example.co.jp"]


def luhn_complete(prefix, length):
    digits = [int(d) for d in prefix]
    while len(digits) < length - 1:
        digits.append(rng.randrange(10))
    for check in range(10):
        candidate = digits + [check]
        total = 0
        for i, d in enumerate(reversed(candidate)):
            if i % 2 == 1:
                d *= 2
                if d > 9:
                    d -= 9
            total += d
        if total % 10 == 0:
            return "".join(map(str, candidate))
    raise AssertionError


def card():
    kind = rng.choice(["visa", "mc", "amex", "discover"])
    if kind == "visa":
        number = luhn_complete("4", 16)
    elif kind == "mc":
        number = luhn_complete(str(rng.randint(51, 55)), 16)
    elif kind == "amex":
        number = luhn_complete(rng.choice(["34", "37"]), 15)
        style = rng.choice(["amex", "none"])
        if style == "amex":
            return f"{number[:4]} {number[4:10]} {number[10:]}"
        return number
    else:
        number = luhn_complete("6011", 16)
    sep = rng.choice([" ", "-", ""])
    return sep.join(number[i:i + 4] for i in range(0, 16, 4))


def bad_card():
    number = luhn_complete("4", 16)
    last = (int(number[-1]) + rng.randint(1, 9)) % 10
    number = number[:-1] + str(last)
    return " ".join(number[i:i + 4] for i in range(0, 16, 4))


IBAN_SPEC = {"DE": (18, "n"), "GB": (18, "gb"), "FR": (23, "n"), "NL": (14, "nl"), "ES": (20, "n"),
             "IT": (23, "it"), "BE": (12, "n"), "CH": (17, "n")}


def iban(valid=True):
    country = rng.choice(list(IBAN_SPEC))
    length, kind = IBAN_SPEC[country]
    if kind == "gb":
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + "".join(
            rng.choice(string.digits) for _ in range(14))
    elif kind == "nl":
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + "".join(
            rng.choice(string.digits) for _ in range(10))
    elif kind == "it":
        bban = rng.choice(string.ascii_uppercase) + "".join(rng.choice(string.digits) for _ in range(22))
    else:
        bban = "".join(rng.choice(string.digits) for _ in range(length))
    rearranged = bban + country + "00"
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    check = 98 - int(numeric) % 97
    if not valid:
        check = (check + rng.randint(1, 50)) % 97 + 2
    value = f"{country}{check:02d}{bban}"
    if rng.random() < 0.6:
        value = " ".join(value[i:i + 4] for i in range(0, len(value), 4))
    return value


def ssn():
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def phone():
    style = rng.choice(["uk", "de", "fr", "us_intl", "us", "us_paren", "in"])
    if style == "uk":
        return f"+44 20 {rng.randint(7000, 8999)} {rng.randint(1000, 9999)}"
    if style == "de":
        return f"+49 30 {rng.randint(100000, 999999)}{rng.randint(0, 9)}"
    if style == "fr":
        return "+33 " + " ".join(f"{rng.randint(1, 9)}" if i == 0 else f"{rng.randint(0, 99):02d}" for i in range(5))
    if style == "in":
        return f"+91 {rng.randint(70000, 99999)} {rng.randint(10000, 99999)}"
    area, exch, line = rng.randint(201, 989), rng.randint(201, 989), rng.randint(0, 9999)
    if style == "us_intl":
        return f"+1 {area} {exch} {line:04d}"
    if style == "us_paren":
        return f"({area}) {exch}-{line:04d}"
    return f"{area}-{exch}-{line:04d}"


def email():
    name = rng.choice(FIRST) + rng.choice([".", "_", ""]) + rng.choice(LAST)
    if rng.random() < 0.3:
        name += str(rng.randint(1, 99))
    return f"{name}@{rng.choice(DOMAINS)}"


def ipv4():
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


def ipv6():
    groups = [f"{rng.randint(0, 65535):x}" for _ in range(8)]
    if rng.random() < 0.5:
        return "2001:db8::" + ":".join(groups[:3])
    return ":".join(groups)


def dob():
    y, m, d = rng.randint(1940, 2005), rng.randint(1, 12), rng.randint(1, 28)
    months = ["January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December"]
    return rng.choice([f"{m:02d}/{d:02d}/{y}", f"{y}-{m:02d}-{d:02d}", f"{months[m - 1]} {d}, {y}",
                       f"{d} {months[m - 1]} {y}"])


def passport():
    return rng.choice(string.ascii_uppercase) + "".join(rng.choice(string.digits) for _ in range(8))


GIVEN = ["Olivia", "Mateo", "Priya", "Kwame", "Ingrid", "Hiroshi", "Fatima", "Lucas", "Elena", "Omar",
         "Sarah", "Tomasz", "Aoife", "Rahul", "Camille", "Jonas"]
SURNAMES = ["Hartmann", "Okafor", "Lindqvist", "Moreau", "Kowalski", "Nakamura", "Haddad", "Fernandes",
            "O'Brien", "Mensah", "Castillo", "Novak", "Iyer", "Brennan"]
STREETS = ["Baker", "Maple", "Oak", "Elm Grove", "King", "Station", "Mill", "Church", "Park", "Victoria"]
SUFFIX = ["Street", "St", "Avenue", "Ave", "Road", "Rd", "Lane", "Drive", "Way", "Court"]
CITIES = ["London", "Springfield", "Leeds", "Boston", "Denver", "Dublin"]


def person():
    if rng.random() < 0.5:
        return f"{rng.choice(GIVEN)} {rng.choice(SURNAMES)}"
    return rng.choice(SURNAMES)


def address():
    style = rng.random()
    if style < 0.6:
        value = f"{rng.randint(1, 9999)} {rng.choice(STREETS)} {rng.choice(SUFFIX)}"
        if rng.random() < 0.5:
            value += f", {rng.choice(CITIES)}"
        return value
    if style < 0.8:
        return f"{rng.choice(['Haupt', 'Linden', 'Garten', 'Schiller', 'Bahnhof'])}{rng.choice(['straße', 'weg', 'gasse', 'allee'])} {rng.randint(1, 200)}"
    return f"{rng.randint(1, 120)} {rng.choice(['rue', 'avenue', 'boulevard'])} {rng.choice(['de la Paix', 'Victor Hugo', 'des Lilas', 'Voltaire'])}"


def aws_key():
    return "AKIA" + "".join(rng.choice(string.ascii_uppercase + "234567") for _ in range(16))


def github_token():
    return "ghp_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(36))


def stripe_key():
    return "sk_live_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(24))


def jwt():
    import base64
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()).decode().rstrip("=")
    body = base64.urlsafe_b64encode(json.dumps({"sub": str(rng.randint(1, 10**6)), "iat": rng.randint(10**9, 2 * 10**9)}).encode()).decode().rstrip("=")
    sig = "".join(rng.choice(string.ascii_letters + string.digits + "-_") for _ in range(43))
    return f"{header}.{body}.{sig}"


POSITIVE = [
    ("email", email, ["Please email {v} with the invoice.", "Contact: {v}", "cc {v} on the thread",
                      "My address is {v}, reply there.", "Send the report to {v} by Friday."]),
    ("phone", phone, ["Call me on {v} after 5pm.", "Phone: {v}", "reach the front desk at {v}",
                      "Her mobile is {v}.", "Dial {v} for support."]),
    ("credit_card", card, ["Card number {v}, expiry 09/27.", "I paid with {v} yesterday.",
                           "charge {v} for the order", "The card {v} was declined."]),
    ("iban", iban, ["Transfer it to {v} please.", "IBAN: {v}", "Our account is {v} at the bank.",
                    "Refund to {v}."]),
    ("us_ssn", ssn, ["SSN {v} on file.", "Her social security number is {v}.", "ssn: {v}"]),
    ("ipv4", ipv4, ["Login from {v} was blocked.", "The server at {v} is down.", "client ip {v}"]),
    ("ipv6", ipv6, ["Traffic from {v} spiked.", "host {v} answered"]),
    ("date_of_birth", dob, ["I was born on {v}.", "Date of birth: {v}", "DOB {v}", "My birthday is {v}."]),
    ("passport_number", passport, ["Passport number {v}, issued 2019.", "passport no. {v}"]),
    ("person_name", person, ["My name is {v} and I have a question.", "Please contact Dr. {v} tomorrow.",
                             "Patient: {v}, room 4", "Regards, {v}", "Mrs. {v} called twice."]),
    ("street_address", address, ["Ship it to {v} please.", "Our office is at {v}.", "Address: {v}",
                                 "She lives at {v} now."]),
    ("aws_access_key", aws_key, ["use {v} for the bucket", "AWS key: {v}"]),
    ("github_token", github_token, ["token {v} works", "export GITHUB_TOKEN={v}"]),
    ("stripe_key", stripe_key, ["Stripe secret {v}", "set STRIPE_KEY={v}"]),
    ("jwt", jwt, ["Authorization: Bearer {v}", "the session token is {v}"]),
]

NEGATIVE = [
    lambda: f"Order {rng.randint(10**15, 10**16 - 1)} has shipped.",
    lambda: f"Card {bad_card()} is a typo, please ignore.",
    lambda: f"IBAN {iban(valid=False)} bounced (invalid).",
    lambda: f"Upgrade to version {rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}.{rng.randint(0, 999)} today.",
    lambda: f"The meeting is on {rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{rng.randint(2020, 2027)}.",
    lambda: f"It costs ${rng.randint(1, 999)}.{rng.randint(0, 99):02d} plus {rng.randint(5, 25)}% tax.",
    lambda: f"Ticket #{rng.randint(1000, 99999)} was closed at {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.",
    lambda: f"SSN 000-{rng.randint(10, 99)}-{rng.randint(1000, 9999)} is not a valid number.",
    lambda: f"ZIP {rng.randint(10000, 99999)}, building {rng.randint(1, 40)}, floor {rng.randint(1, 12)}.",
    lambda: f"ISBN 978-{rng.randint(0, 9)}-{rng.randint(100, 999)}-{rng.randint(10000, 99999)}-{rng.randint(0, 9)}",
    lambda: f"Use the token placeholder <YOUR_TOKEN> and the key AKIA... from the console.",
    lambda: f"The ratio was {rng.random():.6f} with p < 0.{rng.randint(1, 9)}.",
    lambda: f"Run `git checkout {''.join(rng.choice('0123456789abcdef') for _ in range(40))}`.",
    lambda: "Passport control took an hour; the driver's license office was closed.",
    lambda: f"I'm Happy to help, {rng.choice(['thanks', 'cheers'])}, Team!",
    lambda: f"The {rng.choice(['Main Street', 'Wall Street', 'Park Avenue'])} Journal ran {rng.randint(2, 9)} stories.",
    lambda: f"Chapter {rng.randint(1, 30)}: The Old Mill Road revisited.",
    lambda: f"Population {rng.randint(1000000, 9999999)} in {rng.randint(1990, 2024)}.",
]


def main():
    rows = []
    for _ in range(60):
        for cls, gen, templates in POSITIVE:
            parts = []
            spans = []
            text = ""
            for n in range(rng.choice([1, 1, 2])):
                v = gen()
                t = rng.choice(templates)
                before, after = t.split("{v}")
                prefix = (text + " ") if text else ""
                start = len(prefix) + len(before)
                text = prefix + before + v + after
                spans.append({"type": cls, "start": start, "end": start + len(v)})
            rows.append({"text": text, "spans": spans, "source": "synthetic"})
    for _ in range(500):
        rows.append({"text": rng.choice(NEGATIVE)(), "spans": [], "source": "synthetic look-alike"})
    rng.shuffle(rows)
    out = Path(__file__).with_name("pii-eval.jsonl")
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"{len(rows)} rows -> {out}")


if __name__ == "__main__":
    main()
