"""A deterministic corpus of image-reference strings for the Go differential test.

`corpus(size, seed)` returns ``size`` distinct strings, the same on every machine for the same
arguments (one `random.Random(seed)`, no hash ordering). They are built from realistic pieces and
then bent: every host shape containerd meets (names, IPv4, IPv6, ports, Docker Hub's hosts,
``:443``), cases and Unicode look-alikes, tags and digests at and beyond their limits, separators
at the edges of what the grammar allows, percent-encoding and traversal, image IDs, lengths around
255 and random characters. A third of the corpus is made of single edits of valid references,
where parsers disagree most.

Strings are valid Unicode without lone surrogates (an AdmissionReview is JSON, whose decoder in
the kube-apiserver replaces those), so Go and Python read the same characters.
"""

from __future__ import annotations

import random
import string

HEX = "0123456789abcdef"

HOSTS = [
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
    "hub.docker.com",
    "ghcr.io",
    "quay.io",
    "gcr.io",
    "us-docker.pkg.dev",
    "registry.k8s.io",
    "public.ecr.aws",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com",
    "registry.example.com",
    "a.b",
    "a",
    "my-registry",
    "localhost",
    "127.0.0.1",
    "10.0.0.1",
    "255.255.255.255",
    "256.1.1.1",
    "127.1",
    "0x7f.0.0.1",
    "127.000.000.001",
    "2130706433",
    "1.2.3.4.5",
    "[::1]",
    "[fe80::1]",
    "[2001:db8::1]",
    "[2001:DB8::1]",
    "[0:0:0:0:0:0:0:1]",
    "[::0001]",
    "[::ffff:127.0.0.1]",
    "[fe80::1%eth0]",
    "[::1",
    "::1",
    "[]",
    "[:]",
    "registry.example.com.",
    ".example.com",
    "-a.example.com",
    "a-.example.com",
    "a_b.example.com",
    "a..b",
    "xn--bcher-kva.example",
    "Docker.io",
    "DOCKER.IO",
    "INDEX.DOCKER.IO",
    "Index.Docker.io",
    "LOCALHOST",
    "Localhost",
    "Registry.Example.com",
    "MyRegistry",
    "S",
    "\u212aube.example",  # KELVIN SIGN
    "regi\u017ftry.example",  # LATIN SMALL LETTER LONG S
    "reg\u0130stry.example",  # LATIN CAPITAL LETTER I WITH DOT ABOVE
    "\u0131ndex.docker.io",  # LATIN SMALL LETTER DOTLESS I
    "d\u043ecker.io",  # CYRILLIC SMALL LETTER O
    "\uff47hcr.io",  # FULLWIDTH LATIN SMALL LETTER G
    "ghcr\u3002io",  # IDEOGRAPHIC FULL STOP
    "b\u00fccher.example",
    "",
]

PORTS = [
    "",
    "",
    "",
    ":443",
    ":443",
    ":5000",
    ":80",
    ":0443",
    ":00443",
    ":0",
    ":1",
    ":65535",
    ":65536",
    ":99999999999999999999",
    ":",
    ":abc",
    ":4\u0664\u0663",  # ARABIC-INDIC DIGITS
    ":443:443",
    ":-1",
    ":+443",
]

PATHS = [
    "nginx",
    "library/nginx",
    "library/busybox",
    "org/app",
    "bitnami/redis",
    "a/b/c/d",
    "x",
    "0",
    "a__b",
    "a___b",
    "a--b",
    "a---b",
    "a.b",
    "a..b",
    "a._b",
    "a_.b",
    "a.-b",
    "-a",
    "a-",
    "_a",
    "a_",
    ".a",
    "a.",
    "A",
    "Nginx",
    "org/App",
    "sha256",
    "sha512",
    "library/sha256",
    "localhost",
    "docker.io",
    "ghcr.io/org/app",
    "a" * 64,
    "0123456789abcdef" * 4,
    "a//b",
    "a/",
    "/a",
    "a/../b",
    "../a",
    "a/./b",
    "a%2Fb",
    "a%2fb",
    "%61",
    "a%00b",
    "a\\b",
    "a/b?c",
    "a/b#c",
    "a;b",
    "n\u0261inx",
    "\u212a",
    "caf\u00e9",
    "x" * 255,
    "x" * 256,
    "/".join(["ab"] * 86),
    "/".join(["ab"] * 85),
    "",
]

TAGS: list[str | None] = [
    None,
    None,
    None,
    "latest",
    "1.27",
    "v1.2.3",
    "1",
    "_x",
    ".x",
    "-x",
    "x-",
    "X_Y.z-1",
    "A" * 128,
    "A" * 129,
    "",
    "a:b",
    "a/b",
    "la\u0442est",  # CYRILLIC SMALL LETTER TE
    "lat\u00e9st",
    "\u0661",
    "sha256",
    "a" * 64,
    "0123abcd",
]

SHA256 = "sha256:" + "0123456789abcdef" * 4


def _digests(rng: random.Random) -> list[str | None]:
    hex64 = _hex(rng, 64)
    return [
        None,
        None,
        None,
        "sha256:" + hex64,
        SHA256,
        "sha256:" + hex64.upper(),
        "SHA256:" + hex64,
        "sha256:" + hex64[:63],
        "sha256:" + hex64 + "0",
        "sha256:" + hex64[:32],
        "sha512:" + hex64 * 2,
        "sha384:" + hex64 + hex64[:32],
        "md5:" + hex64[:32],
        "sha256+b64:" + hex64,
        "sha256:" + hex64[:-1] + "g",
        "sha256:",
        "sha256",
        ":" + hex64,
        "",
        "sha256:" + hex64 + "@" + SHA256,
    ]


_CONFUSABLE = "\u212a\u017f\u0130\u0131\u043e\u0430\uff0f\u2044\u2215\uff1a\u0589\u00b7\u200b\ufeff"
_ALPHABET = (
    string.ascii_lowercase * 3
    + string.digits * 2
    + string.ascii_uppercase
    + "./:@_-" * 4
    + "%[]#?\\;+=~!$&'()*,"
    + " \t\n\r\x00\x7f"
    + _CONFUSABLE
)
_SEPARATORS = ["/", ":", "@", ".", "_", "__", "-", "--", "%2F", "%00", "..", "//", ":443", "[", "]"]


def _host(rng: random.Random) -> str:
    host = rng.choice(HOSTS)
    if host and rng.random() < 0.12:  # one letter's case flipped
        i = rng.randrange(len(host))
        host = host[:i] + host[i].swapcase() + host[i + 1 :]
    return host + rng.choice(PORTS)


def _reference(rng: random.Random, digests: list[str | None]) -> str:
    shape = rng.random()
    path = rng.choice(PATHS)
    if shape < 0.35:
        text = path  # no host: Docker Hub, unless the first component looks like one
    elif shape < 0.9:
        text = f"{_host(rng)}/{path}"
    else:  # a nested path under a host
        text = f"{_host(rng)}/{rng.choice(PATHS)}/{path}"
    tag = TAGS[rng.randrange(len(TAGS))]
    if tag is not None:
        text += ":" + tag
    digest = digests[rng.randrange(len(digests))]
    if digest is not None:
        text += "@" + digest
    return text


def _word(rng: random.Random, alphabet: str, low: int, high: int) -> str:
    return "".join(rng.choices(alphabet, k=rng.randint(low, high)))


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(4 * digits):0{digits}x}"


_TAG_FIRST = string.ascii_letters + string.digits + "_"
_TAG_REST = _TAG_FIRST + ".-"


def _valid(rng: random.Random) -> str:
    """A reference distribution/reference accepts (and signgate too, mostly)."""
    label = _word(rng, string.ascii_lowercase, 1, 8)
    host = rng.choice(
        [
            "",
            "docker.io/",
            "index.docker.io/",
            "ghcr.io/",
            f"{label}.example/",
            f"{label}.example:{rng.randint(1, 65535)}/",
            "localhost:5000/",
            "127.0.0.1:5000/",
            "[::1]:5000/",
            "registry-1.docker.io/",
            f"{label}.example:443/",
        ]
    )
    components = []
    for _ in range(rng.randint(1, 4)):
        atoms = [_word(rng, HEX + "xyz", 1, 6)]
        for _ in range(rng.randint(0, 2)):
            atoms.append(rng.choice([".", "_", "__", "-", "---"]))
            atoms.append(_word(rng, string.ascii_lowercase, 1, 3))
        components.append("".join(atoms))
    text = host + "/".join(components)
    if rng.random() < 0.6:
        text += ":" + rng.choice(_TAG_FIRST) + _word(rng, _TAG_REST, 0, 20)
    if rng.random() < 0.4:
        text += "@sha256:" + _hex(rng, 64)
    return text


def _mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(text) + 1)
        kind = rng.randrange(6)
        if kind == 0:
            text = text[:i] + rng.choice(_ALPHABET) + text[i:]
        elif kind == 1 and text:
            text = text[: max(i - 1, 0)] + text[i:]
        elif kind == 2 and i < len(text):
            text = text[:i] + rng.choice(_ALPHABET) + text[i + 1 :]
        elif kind == 3 and i < len(text):
            text = text[:i] + text[i].swapcase() + text[i + 1 :]
        elif kind == 4:
            text = text[:i] + rng.choice(_SEPARATORS) + text[i:]
        else:
            text = text[:i] if rng.random() < 0.5 else text[i:]
    return text


def _edge_lengths(rng: random.Random) -> list[str]:
    out = []
    for total in range(250, 262):
        for host in ("", "docker.io/", "a.example/", "localhost:5000/"):
            for prefix in ("", "library/"):
                name = host + prefix
                path = "a" * max(total - len(name), 1)
                out.append(name + path)
                out.append(name + path[:-2] + "/b")
    for n in (127, 128, 129):
        out.append("nginx:" + "t" * n)
        out.append("nginx:_" + "t" * (n - 1))
    for n in (31, 32, 33, 63, 64, 65, 128):
        out.append("nginx@sha256:" + "a" * n)
        out.append("nginx@sha512:" + "a" * n)
        out.append("a" * n)
        out.append("sha256:" + "a" * n)
    out.append("a" * 4096)
    out.append("a" * 4097)
    out.append("ghcr.io/" + "a/" * 2000 + "a")
    rng.shuffle(out)
    return out


def _random_text(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return _word(rng, _ALPHABET, 0, 24)
    raw = rng.randbytes(rng.randint(0, 24))
    return raw.decode("utf-8", errors="replace") if rng.random() < 0.5 else raw.decode("latin-1")


def corpus(size: int = 120_000, seed: int = 15) -> list[str]:
    """``size`` distinct reference strings, always the same for the same ``size`` and ``seed``."""
    rng = random.Random(seed)
    digests = _digests(rng)
    seen: dict[str, None] = dict.fromkeys(_edge_lengths(rng))
    makers = [
        (0.40, lambda: _reference(rng, digests)),
        (0.20, lambda: _valid(rng)),
        (
            0.30,
            lambda: _mutate(rng, _valid(rng) if rng.random() < 0.7 else _reference(rng, digests)),
        ),
        (0.10, lambda: _random_text(rng)),
    ]
    weights = [w for w, _ in makers]
    while len(seen) < size:
        _, make = rng.choices(makers, weights)[0]
        seen.setdefault(make())
    return list(seen)[:size]
