"""What a facet is made of: a plain name and the item ids marked as examples of it (or not).

A definition also travels inside links (``encode``/``decode``): compressed JSON in URL-safe base64,
bounded by ``MAX_DEFINITION_CHARS``, so a shared link rebuilds the same facet anywhere the same
items exist.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import zlib
from dataclasses import dataclass

from ..errors import BadInput, IllustraError
from ..search.limits import MAX_DEFINITION_CHARS, MAX_EXAMPLES, MAX_FACET_NAME_CHARS, MAX_ID_ECHO, short_id

# Letters, digits, "-" and "_", starting with a letter or digit: safe in a URL path and a shell.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z")
ENCODING_VERSION = "1"  # zlib-compressed JSON
PLAIN_VERSION = "0"  # plain JSON, as the page's script writes it (no compression in a browser without waiting)


class FacetNotFound(IllustraError):
    code = "facet_not_found"
    exit_code = 3
    http_status = 404


class FacetExists(IllustraError):
    code = "facet_exists"
    exit_code = 2
    http_status = 409


class DefinitionTooLong(BadInput):
    """A definition with too many (or too long) ids to travel in a link."""


def check_name(name: str | None) -> str:
    """A facet's name as given; anything but a plain name is a ``BadInput`` saying what is allowed."""
    text = name or ""
    if not text:
        raise BadInput("a facet needs a name")
    if len(text) > MAX_FACET_NAME_CHARS:
        raise BadInput(f"the facet name is {len(text):,} characters; the limit is {MAX_FACET_NAME_CHARS}")
    if not NAME_RE.match(text):
        raise BadInput(
            f"{short_id(text)!r} is not a plain name: use letters, digits, '-' and '_' "
            "(starting with a letter or digit)"
        )
    return text


def _ids(values: object, what: str) -> tuple[str, ...]:
    if not isinstance(values, (list, tuple)):
        raise BadInput(f"the {what} examples must be a list of item ids")
    out: list[str] = []
    for v in values:
        if not isinstance(v, str) or not v:
            raise BadInput(f"every {what} example must be an item id (a non-empty string)")
        out.append(v)  # ids are exact: one with spaces around it is another (unknown) id
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class FacetDefinition:
    """Item ids marked as examples of the facet (positives) and as not (negatives), each once."""

    positives: tuple[str, ...]
    negatives: tuple[str, ...] = ()

    @classmethod
    def of(cls, positives: object = (), negatives: object = (), *, check: bool = True) -> FacetDefinition:
        """A definition from lists of ids; checked (``check``) unless the caller checks it later."""
        d = cls(_ids(positives, "positive"), _ids(negatives, "negative"))
        if check:
            d.check()
        return d

    def check(self) -> None:
        """At most ``MAX_EXAMPLES`` examples together, none marked both ways."""
        self.check_size()
        self.check_sides()

    def check_size(self) -> None:
        total = len(self.positives) + len(self.negatives)
        if total > MAX_EXAMPLES:
            raise BadInput(f"{total:,} examples given; a facet takes at most {MAX_EXAMPLES:,}")

    def check_sides(self) -> None:
        both = set(self.positives) & set(self.negatives)
        if both:
            shown = ", ".join(repr(short_id(i)) for i in sorted(both)[:5])
            raise BadInput(f"marked both as an example and as not one: {shown}")

    def changed(
        self, add_positive: tuple[str, ...] = (), add_negative: tuple[str, ...] = (), remove: tuple[str, ...] = ()
    ) -> FacetDefinition:
        """This definition with examples added or removed. An id added to one side leaves the other."""
        gone = set(remove) | set(add_positive) | set(add_negative)
        pos = [i for i in self.positives if i not in gone] + list(add_positive)
        neg = [i for i in self.negatives if i not in gone] + list(add_negative)
        return FacetDefinition.of(pos, neg)

    @property
    def size(self) -> int:
        return len(self.positives) + len(self.negatives)

    def key(self) -> str:
        """A stable digest of the examples (order does not matter): caches and random draws use it."""
        canon = json.dumps([sorted(self.positives), sorted(self.negatives)], ensure_ascii=False)
        return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:20]

    def to_json(self) -> dict[str, list[str]]:
        return {"positive": list(self.positives), "negative": list(self.negatives)}

    def encode(self, label: str | None = None) -> str:
        """The definition (and a label to show for it) for a link; ``DefinitionTooLong`` when it
        would not fit ``MAX_DEFINITION_CHARS``."""
        obj: dict[str, object] = {"p": self.positives, "n": self.negatives}
        if label:
            obj["l"] = label
        raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        packed = base64.urlsafe_b64encode(zlib.compress(raw.encode("utf-8"), 9)).decode("ascii").rstrip("=")
        text = f"{ENCODING_VERSION}.{packed}"
        if len(text) > MAX_DEFINITION_CHARS:
            raise DefinitionTooLong(
                f"the facet's {self.size:,} examples take {len(text):,} characters in a link; the limit is "
                f"{MAX_DEFINITION_CHARS:,}"
            )
        return text

    @classmethod
    def decode(cls, text: str) -> tuple[FacetDefinition, str | None]:
        """A definition and its label from a link; anything malformed is one ``BadInput``."""
        bad = BadInput("the facet definition in the link is damaged or incomplete; copy the whole link again")
        if len(text) > MAX_DEFINITION_CHARS:
            raise BadInput(f"the facet definition is {len(text):,} characters; the limit is {MAX_DEFINITION_CHARS:,}")
        version, _, packed = text.strip().partition(".")
        if version not in (ENCODING_VERSION, PLAIN_VERSION) or not packed:
            raise bad
        try:
            data = base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4))
            if version == ENCODING_VERSION:
                inflate = zlib.decompressobj()
                # A bomb cannot inflate past what MAX_EXAMPLES long ids could need.
                data = inflate.decompress(data, MAX_EXAMPLES * (MAX_ID_ECHO + 1000))
                if inflate.unconsumed_tail:
                    raise bad
            obj = json.loads(data.decode("utf-8"))
        except (binascii.Error, ValueError, zlib.error, UnicodeDecodeError):
            raise bad from None
        if not isinstance(obj, dict):
            raise bad
        label = obj.get("l")
        label = label.strip()[:MAX_FACET_NAME_CHARS] if isinstance(label, str) and label.strip() else None
        return cls.of(obj.get("p", []), obj.get("n", [])), label
