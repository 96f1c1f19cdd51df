"""Code similarity across teams with copydetect, the template's code given as boilerplate.

Every fragment of the teams' reference renders is boilerplate: copydetect drops those
fingerprints from the teams' files, so template code (and a file a team left unchanged) never
matches. What is left is compared across teams only (a team's files are not compared with each
other). copydetect tokenises code and replaces names and strings (`x = f("a")` and
`y = g("b")` match), then hashes every run of NOISE characters of the result (copydetect's
default, 25). Files compared:

- code: .py, .sh, .bash, .sql, .js, .ts, .r, .R, and a notebook's code cells;
- documents (.md, .rst, .txt): not tokenised, whitespace collapsed and lowercased, runs of
  DOCUMENT_NOISE (50) characters, so that only sentences copied word for word match. What the
  pipeline writes is left out: the cards' sections between pipeline markers, and `reports/`
  (two teams on the same data get the same measured sections; that is not copying).

A pair of files is reported when the shared fragments cover at least `threshold` of either
file's own (non-template) content and at least `min_overlap` tokens (characters of the
tokenised code, or of the document). A fragment found in more than COMMON_FRAGMENT files is an
idiom rather than a copy and does not make files candidates on its own.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from mlops_template.sources import is_generated, notebook_code, read_text_or_none, team_text

CODE_SUFFIXES = {".py", ".sh", ".bash", ".sql", ".js", ".ts", ".r", ".R", ".ipynb"}
DOCUMENT_SUFFIXES = {".md", ".rst", ".txt"}
NOISE, DOCUMENT_NOISE = 25, 50
COMMON_FRAGMENT = 50


@dataclass(frozen=True)
class TeamSources:
    name: str
    files: dict[str, Path]  # the team's source files
    reference: dict[str, Path]  # its reference render's files


@dataclass(frozen=True)
class Match:
    team_a: str
    file_a: str
    team_b: str
    file_b: str
    similarity_a: float  # share of file_a's own content found in file_b
    similarity_b: float
    overlap: int  # shared tokens


def kind(relative: str) -> str | None:
    suffix = Path(relative).suffix
    if suffix in CODE_SUFFIXES:
        return "code"
    return "document" if suffix in DOCUMENT_SUFFIXES else None


def prepared(relative: str, path: Path) -> str | None:
    """The text copydetect reads: a notebook's code cells; a document normalised."""
    text = read_text_or_none(path)
    if text is None:
        return None
    if relative.endswith(".ipynb"):
        return notebook_code(text)
    if kind(relative) == "document":  # what the team wrote: not the pipeline's sections
        return re.sub(r"\s+", " ", team_text(text)).strip().lower()
    return text


class Fingerprinter:
    """copydetect fingerprints, with the boilerplate of every reference render removed."""

    def __init__(self, references: list[dict[str, Path]]) -> None:
        os.environ.setdefault("MPLBACKEND", "Agg")  # copydetect imports pyplot; no display here
        # Imported here: numpy and matplotlib cost ~2 s, which only `similar` pays.
        import copydetect
        import numpy

        self.copydetect = copydetect
        seen, hashes = set(), {"code": [], "document": []}
        for files in references:
            for relative, path in files.items():
                text, what = prepared(relative, path), kind(relative)
                digest = hashlib.sha256((text or "").encode()).hexdigest()
                if what and text and (what, digest) not in seen:
                    seen.add((what, digest))
                    hashes[what].extend(self.fingerprint(relative, text, window=1).hashes)
        self.boilerplate = {what: numpy.unique(numpy.array(h)) for what, h in hashes.items()}

    def fingerprint(self, relative: str, text: str, window: int = 1, boilerplate=None):
        code = kind(relative) == "code"
        return self.copydetect.CodeFingerprint(
            relative,
            NOISE if code else DOCUMENT_NOISE,
            window,
            boilerplate=boilerplate,
            filter=code,
            language="python" if relative.endswith(".ipynb") else None,
            fp=io.StringIO(text),
        )

    def team(self, team: TeamSources) -> dict[str, object]:
        """Fingerprints of a team's files that hold content of their own (relative -> print)."""
        prints = {}
        for relative, path in team.files.items():
            same = team.reference.get(relative)
            if kind(relative) is None or is_generated(relative):
                continue  # not compared, or written by the pipeline, not the team
            if same and same.read_bytes() == path.read_bytes():
                continue
            text = prepared(relative, path)
            if text:
                boilerplate = self.boilerplate[kind(relative)]
                found = self.fingerprint(relative, text, boilerplate=boilerplate)
                if found.hashes:
                    prints[relative] = found
        return prints


def find_matches(
    fingerprinter: Fingerprinter, teams: dict[str, dict], threshold: float, min_overlap: int
) -> list[Match]:
    """Pairs of files of different teams over both thresholds, most similar first; `teams`: each
    team's fingerprints (Fingerprinter.team), in the order of the command line."""
    prints = {(name, rel): fp for name, found in teams.items() for rel, fp in found.items()}
    holders = defaultdict(list)
    for key, found in prints.items():
        for value in found.hashes:
            holders[value].append(key)
    shared = Counter()
    for keys in holders.values():
        if len(keys) <= COMMON_FRAGMENT:
            for i, a in enumerate(keys):
                shared.update((a, b) for b in keys[i + 1 :] if a[0] != b[0])
    order = {name: index for index, name in enumerate(teams)}
    matches = []
    for a, b in shared:
        a, b = sorted((a, b), key=lambda key: (order[key[0]], key[1]))
        overlap, (sim_a, sim_b), _ = fingerprinter.copydetect.compare_files(prints[a], prints[b])
        if overlap >= min_overlap and max(sim_a, sim_b) >= threshold:
            sims = round(float(sim_a), 3), round(float(sim_b), 3)
            matches.append(Match(a[0], a[1], b[0], b[1], *sims, int(overlap)))
    return sorted(matches, key=lambda m: (-max(m.similarity_a, m.similarity_b), m.team_a))
