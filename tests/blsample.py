"""Small manifests in the format of the British Library Flickr Commons files, written by the tests.

The real manifests (BL Labs "imagedirectory", public domain) are tab-separated without quoting,
with a 25-column header. What real files have, and these samples have too:

- rows of all 25 columns ending in CRLF, and a few thousand *short* rows of 13 fields in another
  order (flickr_id, flickr_url, book_identifier, title, first_author, pubplace, publisher, date,
  volume, page, image_idx, ARK_id_of_book, BL_DLS_ID) ending in a bare LF, with no image URLs;
- in the full files every short row appears twice, word for word (so its id is repeated);
- ``date`` is usually a year, sometimes empty; ``publisher`` is empty for most rows and is at
  times swapped with ``pubplace``; ``first_author``, ``BL_DLS_ID`` and ``ARK_id_of_book`` are often
  empty;
- titles are long, multilingual (French, German, Greek), carry cataloguer notes in [brackets] and
  typographic quotes;
- one book contributes many images (``book_identifier``, ``volume``, ``page``, ``image_idx``);
- not every size exists: some rows have no large image, some only small and original, tiny
  pictures only the original;
- image URLs point to Flickr's static servers (never fetched by the tests).

A few rows are copied word for word from the real files; the rest are generated from real books'
catalogue entries with made-up Flickr ids, pages and URLs. Output is the same on every run.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

HEADER = [
    "volume",
    "publisher",
    "title",
    "first_author",
    "BL_DLS_ID",
    "pubplace",
    "book_identifier",
    "ARK_id_of_book",
    "date",
    "flickr_url",
    "image_idx",
    "page",
    "flickr_id",
    "flickr_small_source",
    "flickr_small_height",
    "flickr_small_width",
    "flickr_medium_source",
    "flickr_medium_height",
    "flickr_medium_width",
    "flickr_large_source",
    "flickr_large_height",
    "flickr_large_width",
    "flickr_original_source",
    "flickr_original_height",
    "flickr_original_width",
]
SHORT_LAYOUT = [
    "flickr_id",
    "flickr_url",
    "book_identifier",
    "title",
    "first_author",
    "pubplace",
    "publisher",
    "date",
    "volume",
    "page",
    "image_idx",
    "ARK_id_of_book",
    "BL_DLS_ID",
]

# Rows copied from the real manifests (25 fields each).
REAL_ROWS = [
    # Every size present; German title with a cataloguer's note in brackets; no publisher.
    "02\t\t[Reisen und Entdeckungen in Nord- und Central-Afrika in den Jahren 1849 bis 1855. Von Dr. H. "
    "Barth. Tagebuch seiner im Auftrag der Brittischen Regierung unternommenen Reise ... Mit Karten, "
    "Holzschnitten und Bildern. L.P.]\tBARTH, Heinrich Traveller\t\tGotha\t000214101\t\t1857\t"
    "http://www.flickr.com/photos/britishlibrary/11026261126\t1\t000508\t11026261126\t"
    "http://farm8.staticflickr.com/7430/11026261126_d391ee5df4_m.jpg\t151\t240\t"
    "http://farm8.staticflickr.com/7430/11026261126_d391ee5df4.jpg\t314\t500\t"
    "http://farm8.staticflickr.com/7430/11026261126_d391ee5df4_b.jpg\t513\t817\t"
    "http://farm8.staticflickr.com/7430/11026261126_104722aa91_o.jpg\t513\t817",
    # No large size; BL_DLS_ID and ARK present.
    "0\t\tResearches in newer pliocene and post-tertiary geology\tSMITH, James of Jordan Hill\t"
    "lsidyv3cc2b247\tGlasgow\t003418991\tark:/81055/vdc_00000005DD32\t1862\t"
    "http://www.flickr.com/photos/britishlibrary/11044298135\t1\t000075\t11044298135\t"
    "http://farm6.staticflickr.com/5499/11044298135_24acba3b93_m.jpg\t240\t200\t"
    "http://farm6.staticflickr.com/5499/11044298135_24acba3b93.jpg\t455\t380\t\t\t\t"
    "http://farm6.staticflickr.com/5499/11044298135_ce02f6d8a5_o.jpg\t455\t380",
    # Only small and original; the accent is a combining character (NFD), as in the real file.
    "0\t\tThe Twins of Saint-Marcel. A tale of Paris Incendie\u0301\tORR, Alexander S. Mrs\t\tEdinburgh\t"
    "002720192\t\t1872\thttp://www.flickr.com/photos/britishlibrary/11061263934\t2\t000293\t11061263934\t"
    "http://farm6.staticflickr.com/5547/11061263934_648bd27636_m.jpg\t226\t230\t\t\t\t\t\t\t"
    "http://farm6.staticflickr.com/5547/11061263934_dd0a5cf044_o.jpg\t226\t230",
    # Only the original of a tiny picture.
    "0\t\tTamerlane the Great, a tragedy [in five acts and in verse]\tSAUNDERS, Charles of Westminster "
    "School\t\tLondon\t003256748\t\t1681\thttp://www.flickr.com/photos/britishlibrary/10997632695\t2\t"
    "000002\t10997632695\t\t\t\t\t\t\t\t\t\thttp://farm4.staticflickr.com/3761/10997632695_6be5a7c5df_o.jpg"
    "\t15\t8",
    # Greek in the title, a publisher, a 17th-century date.
    "0\tW. Stansby for J. Parker\tΤεχνογαμια: or the Marriages of the Arts. A comedie [in five acts, "
    "in prose and verse], etc\tHOLYDAY, Barten.\t\tLondon\t001720349\t\t1618\t"
    "http://www.flickr.com/photos/britishlibrary/10997172224\t1\t000011\t10997172224\t"
    "http://farm8.staticflickr.com/7358/10997172224_bfb2ac6337_m.jpg\t21\t240\t"
    "http://farm8.staticflickr.com/7358/10997172224_bfb2ac6337.jpg\t44\t500\t"
    "http://farm8.staticflickr.com/7358/10997172224_bfb2ac6337_b.jpg\t90\t1024\t"
    "http://farm8.staticflickr.com/7358/10997172224_4b85df038d_o.jpg\t118\t1347",
    # Empty date and place.
    "03\t\tThe Works of John Ruskin\tRuskin, John\t\t\t003191327\t\t\t"
    "http://www.flickr.com/photos/britishlibrary/11171279354\t1\t000029\t11171279354\t"
    "http://farm8.staticflickr.com/7394/11171279354_b2d78a341a_m.jpg\t240\t199\t"
    "http://farm8.staticflickr.com/7394/11171279354_b2d78a341a.jpg\t500\t416\t"
    "http://farm8.staticflickr.com/7394/11171279354_b2d78a341a_b.jpg\t1024\t851\t"
    "http://farm8.staticflickr.com/7394/11171279354_cb89311f59_o.jpg\t1065\t885",
]

# Short rows copied from the real manifests (13 fields each).
REAL_SHORT_ROWS = [
    "11255116055\thttp://www.flickr.com/photos/britishlibrary/11255116055\t003605102\tThe Oxford Thackeray. "
    "With illustrations. [Edited with introductions by George Saintsbury.]\tThackeray, William Makepeace\t"
    "Oxford\t\t\t09\t000616\t1\t\t",
    "11255171795\thttp://www.flickr.com/photos/britishlibrary/11255171795\t000930639\t[[Thirty plates, "
    "proofs of illustrations to the “Household edition” of the works of Charles Dickens.] [1875, 76].]\t"
    "Dickens, Charles\t\t\t\t04\t000307\t1\t\t",
]

# Real books' catalogue entries: book_identifier, title, first_author, pubplace, publisher, date,
# BL_DLS_ID, ARK_id_of_book. Generated rows are pictures from these books.
BOOKS = [
    (
        "002369124",
        "The Land of the Pharaohs. Egypt and Sinai: illustrated by pen and pencil",
        "MANNING, Samuel LL.D",
        "London",
        "The Religious Tract Society",
        "1875",
        "lsidyv3c5989f1",
        "ark:/81055/vdc_00000005A0B4",
    ),
    (
        "001041515",
        "Old and New Paris. Its history, its people, and its places ... With numerous illustrations",
        "EDWARDS, Henry Sutherland.",
        "London",
        "Cassell & Co.",
        "1894",
        "lsidyv3bbac19d",
        "ark:/81055/vdc_000000053916",
    ),
    (
        "001988615",
        "Knight's Cyclopædia of London. 1851",
        "KNIGHT, Charles Publisher",
        "London",
        "",
        "1851",
        "lsidyv3cc4be21",
        "ark:/81055/vdc_00000005DEB8",
    ),
    (
        "002293150",
        "[Principles of Geology, being an attempt to explain the former changes of the earth's surface, "
        "by reference to causes now in operation.]",
        "LYELL, Charles Sir, Bart",
        "London",
        "",
        "1840",
        "lsidyv30b4c0a8",
        "ark:/81055/vdc_00000005284E",
    ),
    (
        "001992753",
        "Overland through Asia. Pictures of Siberian, Chinese, and Tartar life ... With ... map, and ... "
        "illustrations",
        "KNOX, Thomas Wallace.",
        "Hartford, Conn",
        "",
        "1870",
        "lsidyv2aea06d2",
        "ark:/81055/vdc_00000005186A",
    ),
    (
        "000167719",
        "Der vorgeschichtliche Mensch. Ursprung und Entwickelung des Menschengeschlechtes ... Begonnen "
        "von W. Baer. Nach dessen Tode unter Mitwirkung von ... Dr. H. Schaaffhausen vollendet und "
        "herausgegeben von Friedrich von Hellwald",
        "BAER, Wilhelm.",
        "Leipzig",
        "",
        "1874",
        "",
        "",
    ),
    (
        "000299848",
        "Dictionnaire des sciences anthropologiques ... publié sous la direction de A. Bertillon, "
        "Coudereau, A. Hovelacque, Issaurat [and others], etc",
        "BERTILLON, Louis Adolphe.",
        "Paris",
        "",
        "1883",
        "",
        "",
    ),
    (
        "001038398",
        "Edith the Captive; or, the Robbers of Epping Forest. By the author of “Jane Brightwell,” [i.e. "
        "J. M. Rymer.] etc",
        "RYMER, James Malcolm.",
        "London",
        "",
        "1861",
        "",
        "",
    ),
    (
        "003920572",
        "Picturesque Scenery of the Isle of Wight, comprising thirty views, with a map of the island",
        "",
        "Southampton",
        "",
        "1829",
        "",
        "",
    ),
    (
        "000034793",
        "Wanderings in every Clime; or, voyages, travels, and adventures all round the world ... A sequel "
        "to “The Earth delineated with pen and pencil” ... With ... illustrations, etc",
        "AINSWORTH, William Francis.",
        "London",
        "C. Griffin & Co.",
        "1872",
        "",
        "",
    ),
    (
        "000194802",
        "[Pictorial History of the State of New York, etc. [Compiled from the “Historical Collections of "
        "the State of New York,” by J. W. Barber and Henry Howe, published in 1841.]]",
        "BARBER, John Warner.",
        "New York",
        "The Author",
        "1851",
        "",
        "",
    ),
    (
        # Publisher and place swapped, as in the real file.
        "000033833",
        "The Vicar of Wakefield ... Illustrated with numerous engravings. With an account of the "
        "author's life and writings by J. Aikin",
        "Goldsmith, Oliver",
        "D. Appleton & Co",
        "New York",
        "1850",
        "",
        "",
    ),
    (
        "003441509",
        "Travels in Upper and Lower Egypt, undertaken by order of the old government of France ... "
        "Translated from the French [by - Monk?].",
        "SONNINI DE MANONCOURT, Charles Nicolas Sigisbert.",
        "London",
        "",
        "1800",
        "lsidyv3c6eb15d",
        "ark:/81055/vdc_00000005AE52",
    ),
    (
        "001760871",
        "France pittoresque, ou description ... des départements et colonies de la France, etc. "
        "[With plates.]",
        "HUGO, Jean Abel Count",
        "Paris",
        "",
        "1835",
        "",
        "",
    ),
    (
        "002691742",
        "Famous Names in Fiction. Compiled-with a staff of experts-by E. M. O'Connor",
        "O'CONNOR, Evangeline Maria.",
        "",
        "",
        "",
        "",
        "",
    ),
    (
        "003545394",
        "Jorrocks' Jaunts and Jollities ... With ... illustrations by H. Alken. Third edition, ... enlarged",
        "Surtees, Robert Smith",
        "London",
        "",
        "1869",
        "",
        "",
    ),
]

# Short rows come from multi-volume works without image URLs.
SHORT_BOOKS = [
    (
        "003605102",
        "The Oxford Thackeray. With illustrations. [Edited with introductions by George Saintsbury.]",
        "Thackeray, William Makepeace",
        "Oxford",
    ),
    (
        "000930623",
        "The Works of Charles Dickens. Household edition. [With illustrations.]",
        "Dickens, Charles",
        "",
    ),
    (
        "000977434",
        "The Conan Doyle Historical Romances. The White Company. Sir Nigel. Micah Clarke. The Refugees",
        "Doyle, Arthur Conan Sir",
        "",
    ),
]


def _secret(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(10))


def _full_row(i: int, rng: random.Random) -> str:
    book, title, author, place, publisher, date, dls, ark = BOOKS[i % len(BOOKS)]
    fid = str(11000000000 + 7919 * i + 13)
    farm, server = rng.choice([(4, 3783), (6, 5499), (8, 7430), (3, 2831)])
    base = f"http://farm{farm}.staticflickr.com/{server}/{fid}_"
    small, orig = _secret(rng), _secret(rng)
    w, h = rng.randint(300, 2400), rng.randint(300, 2400)

    def dims(side: int) -> tuple[str, str]:
        scale = side / max(w, h)
        return str(max(1, round(h * scale))), str(max(1, round(w * scale)))

    sizes = {
        "small": (f"{base}{small}_m.jpg", *dims(240)),
        "medium": (f"{base}{small}.jpg", *dims(500)),
        "large": (f"{base}{small}_b.jpg", *dims(1024)),
        "original": (f"{base}{orig}_o.jpg", str(h), str(w)),
    }
    pattern = i % 9
    if pattern == 4:  # no large size (the picture is under 1024 px)
        sizes["large"] = ("", "", "")
    elif pattern == 7:  # small and original only
        sizes["medium"] = sizes["large"] = ("", "", "")
    values = {
        "volume": f"{i % 3:02d}" if i % 5 == 0 else "0",
        "publisher": publisher,
        "title": title,
        "first_author": author,
        "BL_DLS_ID": dls,
        "pubplace": place,
        "book_identifier": book,
        "ARK_id_of_book": ark,
        "date": date,
        "flickr_url": f"http://www.flickr.com/photos/britishlibrary/{fid}",
        "image_idx": str(1 + i % 3),
        "page": f"{10 + 37 * i % 900:06d}",
        "flickr_id": fid,
    }
    for size, (url, height, width) in sizes.items():
        values[f"flickr_{size}_source"] = url
        values[f"flickr_{size}_height"] = height
        values[f"flickr_{size}_width"] = width
    return "\t".join(values[c] for c in HEADER)


def _short_row(i: int) -> str:
    book, title, author, place = SHORT_BOOKS[i % len(SHORT_BOOKS)]
    fid = str(11254000000 + 104729 * i + 7)
    values = {
        "flickr_id": fid,
        "flickr_url": f"http://www.flickr.com/photos/britishlibrary/{fid}",
        "book_identifier": book,
        "title": title,
        "first_author": author,
        "pubplace": place,
        "publisher": "",
        "date": "",
        "volume": f"{1 + i % 12:02d}",
        "page": f"{100 + 53 * i % 800:06d}",
        "image_idx": "1",
        "ARK_id_of_book": "",
        "BL_DLS_ID": "",
    }
    return "\t".join(values[c] for c in SHORT_LAYOUT)


def bl_lines(rows: int = 240, short: int = 12, *, repeat_short: bool = False, seed: int = 2013) -> list[str]:
    """Data lines (without line ends): ``rows`` lines in all, ``short`` of them short rows.

    The real rows come first, then generated ones; short rows are spread through the file, the
    last line is a full row. With ``repeat_short`` every short row is followed, later on, by an
    exact copy of itself (as in the full manifests); the copies come on top of ``rows``.
    """
    rng = random.Random(seed)
    n_full = rows - short
    assert n_full > len(REAL_ROWS) and short >= len(REAL_SHORT_ROWS)
    full = [*REAL_ROWS, *(_full_row(i, rng) for i in range(n_full - len(REAL_ROWS)))]
    shorts = [*REAL_SHORT_ROWS, *(_short_row(i) for i in range(short - len(REAL_SHORT_ROWS)))]
    out: list[str] = []
    step = max(1, n_full // (short + 1))
    pending = list(shorts)
    for i, line in enumerate(full):
        out.append(line)
        if pending and i % step == step - 1 and i < n_full - 1:
            out.append(pending.pop(0))
    assert not pending
    if repeat_short:
        shorts_seen = [line for line in out if line.count("\t") == len(SHORT_LAYOUT) - 1]
        for k, line in enumerate(shorts_seen):
            out.insert(min(len(out) - 1, out.index(line) + 5 + k), line)
    return out


def write_bl_manifest(path: Path, lines: list[str] | None = None, *, header: bool = True) -> Path:
    """Write lines as a BL manifest: CRLF after the header and full rows, a bare LF after short
    rows, as in the real files; gzip-compressed when the name ends in .gz."""
    lines = bl_lines() if lines is None else lines
    parts = ["\t".join(HEADER) + "\r\n"] if header else []
    for line in lines:
        parts.append(line + ("\n" if line.count("\t") == len(SHORT_LAYOUT) - 1 else "\r\n"))
    text = "".join(parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
            fh.write(text)
    else:
        path.write_bytes(text.encode("utf-8"))
    return path
