"""Filter stage: keep personas that are relevant, plausible, specific and readable.

Cheap checks run first and alone decide most rejections (`CHECKS` names them): length that fits the
script (words, or characters where a script writes no spaces), one description only, repetition,
accepted languages (by script; any unless configured), a copy of the source text the persona was
extracted from, an unfilled template, a statement about the text or the task instead of a person, a
generic non-person, an implausible child-in-charge pattern, relevance as embedding cosine to the
seed persona, and an English description that reads as a thing, an event or a text retold rather
than a person (`personagraph.probe`, a probe on the same embedding). `cheap_checks` is a pure
function, so extraction and expansion call it inline before they write. What passes goes to an LLM
judge (`prompts/filter/judge.*.md`, one rubric file per criterion) that returns a 1-5 score and a
one-line reason per criterion. Verdicts are written on the node (`status` accepted / rejected,
`score_<criterion>`, `reason_<criterion>`, `filter_failed`, `filter_stage`, `filtered_at`), so a
rerun skips what is decided; `purge_rejected` deletes the rejected, `filter_report` counts them.
Measured on real and weak-model personas: docs/benchmarks.md.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, Field

from personagraph import prompts
from personagraph.graph.store import GraphStore
from personagraph.config import FilterConfig, Lang
from personagraph.probe import load_probe
from personagraph.stage import Stage, StageContext, StageEstimate, StageSummary

CRITERIA = ("relevance", "plausibility", "specificity", "readability")
Criterion = Literal["relevance", "plausibility", "specificity", "readability"]
# Each cheap check and the criterion its failure counts against.
CHECKS: dict[str, Criterion] = {
    "too_short": "specificity", "generic": "specificity", "source_copy": "specificity", "template": "specificity",
    "statement": "readability", "too_long": "readability", "repetition": "readability", "list": "readability",
    "language": "readability", "implausible": "plausibility", "relevance": "relevance",
    "not_a_person": "specificity",
}

# Whole descriptions (after the article) that name nobody in particular.
_GENERIC = re.compile(
    r"^(?:an?|the|some|one|any)?\s*(?:person|people|individual|human(?: being)?|someone|somebody|anyone|user|"
    r"customer|customers|client|member of the public|man|woman|persona|character|guy|citizen|reader|readers|"
    r"(?:seed )?persona'?s? \w+)\s*[.!]?$",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(r"\b(?:lorem ipsum|n/a|todo|tbd|placeholder|example persona|insert (?:name|persona))\b", re.I)
_PLACEHOLDER_KEYS = ("lorem", "n/a", "todo", "tbd", "placeholder", "example persona", "insert")
_LIST = re.compile(r"(?:^|\n)\s*(?:\d+[.)]|[-*•])\s+\S", re.MULTILINE)
# A list marker, heading mark or quote a model puts before one item ("1. ", "2) ", "- ", "**", "#").
_ITEM_MARK = re.compile(r"^\s*(?:\(?\d{1,3}(?:[.)]\s+|[、：]\s*)|[-*•#>]+\s+)|^\*+|^_+|^`+")
_QUOTES = {'"': '"', "“": "”", "'": "'", "「": "」", "『": "』"}
# A young child described as holding an adult's position ("a 5-year-old CEO", "a toddler who runs a
# bank"); the role must follow within three words, so "a 7-year-old who wants to become a surgeon" passes.
_CHILD_IN_CHARGE = re.compile(
    r"\b(?:(?:[1-9]|1[0-2])[- ]year[- ]old|toddler|kindergartner|preschooler)(?:\W+\w+){0,3}?\W+"
    r"(?:ceo|chief executive|runs (?:a|an|the) (?:multinational|company|corporation|hospital|bank)|surgeon|"
    r"judge|senator|professor|airline pilot|owns (?:a|an) (?:company|factory|bank)|investment banker)\b",
    re.IGNORECASE,
)
_CHILD_KEYS = ("year", "toddler", "kindergart", "preschool")


class FilterVerdict(BaseModel):
    """Outcome of the cheap checks: ok, or the failed criteria each with a short reason, and the failed checks."""

    ok: bool
    reasons: dict[str, str] = Field(default_factory=dict)
    checks: list[str] = Field(default_factory=list, description="Names of the failed checks (`CHECKS`)")
    relevance: float | None = Field(default=None, description="Cosine to the seed, when a seed was given")


class CriterionScore(BaseModel):
    """The judge's score for one criterion and why."""

    score: int = Field(ge=1, le=5)
    reason: str = Field(description="one line")


class JudgeScores(BaseModel):
    """The LLM judge's structured answer: a score and a reason per criterion."""

    relevance: CriterionScore
    plausibility: CriterionScore
    specificity: CriterionScore
    readability: CriterionScore


# Template slots a model left unfilled: "{ Person}", "[industry/field]", "<name>", "___", "(insert name)".
_SLOT = re.compile(
    r"\{[^{}\n]{0,60}\}|\[[^\[\]\n]{1,60}\]|<[^<>\n]{1,40}>|_{3,}|\bX{3,}\b|\((?:insert|your|enter) [^)]{0,40}\)|"
    r"\b(?:insert|enter) (?:name|occupation|job|field|industry)\b|【[^】]{0,30}】",
    re.IGNORECASE,
)
_SLOT_KEYS = ("{", "[", "<", "___", "xxx", "(", "insert", "enter", "【")
# A statement about the text, the prompt or the answer instead of a description of someone: "This text
# describes...", "The person is likely to read the text", "Your persona description is: ...", "Here is ...".
_STATEMENT_START = re.compile(
    r"^\W*(?:"
    # the answer talked about instead of given
    r"here (?:is|are)|here's|sure\b|certainly\b|okay\b|of course\b|as an ai\b|note\s*:|answer\s*:|persona\s*\d*\s*[:：]|"
    r"i(?:'m| am) (?:sorry|not sure|unable|happy to|glad)|i(?:'d| would) be happy|"
    r"i (?:cannot|can't|can not|will try|would (?:describe|say))|(?:your|my) persona\b|"
    r"(?:the|this) persona (?:description|would|could|might|may)\b|this is (?:a|an|the)\b|"
    # chatter with the user, or an instruction instead of an answer
    r"i (?:would |)suggest|let me\b|let's\b|i hope\b|i think\b|in summary\b|overall,|please\b|thank(?:s| you)\b|"
    r"hello\b|(?:describe|demonstrate|write|create|imagine|consider|provide|generate|use|explain|identify|answer)\b|"
    r"your\b|to\b|how to\b|step \d|"
    # the text, or the person asked about, as the subject
    r"(?:the|this|that) (?:text|passage|document|article|post|excerpt|content|story|blog|recipe|message|prompt|"
    r"question|task)\b|(?:the|this) (?:author|writer|reader)s?\b(?! of)|based on the\b|according to the\b|"
    r"in (?:this|the) (?:text|passage)|the (?:person|persona|individual) to describe|"
    r"(?:the|this) (?:person|persona|seed)'s\b|the (?:person|individual|reader|writer|author|user|people)\b|"
    r"(?:an?|the)\s+(?:person|persona|reader|writer|author|individual)\s*[:：]|"
    # a guess (no real persona says "likely"), a sentence about an event, a heading
    r"[^.!?\n]{0,80}\b(?:likely|probably)\b|[^。！？\n]{0,20}(?:可能是|大概是|应该是)|"
    r"the [\w'’-]+(?: [\w'’-]+){0,3} (?:is|are|was|were|will|would|has|have|had|can|could|should|may|might|must|"
    r"plans|says|said)\b|(?:if|when|once|after|before|while|although|because|since|unless)\b|"
    # a span of time or a question opening a retelling or a heading: "Six weeks after ...", "How a pod ..."
    r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|a few|several|many) (?:days?|weeks?|"
    r"months?|years?|hours?|decades?) (?:after|of|in|into|since|later|ago|before|on)\b|(?:how|what|why|where)\b|"
    # a sentence about an event, with any verb that takes a place or time after it: "The pod stays in ..."
    r"the (?:(?!(?:who|whose|that|which)\b)[\w'’-]+ ){1,3}(?:\w+ly )?[a-z]+(?:s|ed) (?:in|on|at|to|for|after|"
    r"before|with|from|into|up|out|down|off|over|the|a|an|his|her|their)\b|"
    r"(?!(?:an?|i)\b)[^.:：!?\n\"]{1,50}[:：]\s*\S|"
    r"(?:这|该|此)(?:段|篇)?(?:文本|文章|文字|内容)|根据(?:这|该|以上|上述))",
    re.IGNORECASE,
)
_STATEMENT_ANYWHERE = re.compile(
    r"\b(?:read|reads|reading|write|writes|wrote|written|writing|like|likes|enjoy|enjoys)\s+(?:this|the|that|such)\s+"
    r"(?:text|passage|article|post|document|excerpt)\b|"
    r"\b(?:this|the above|the following|the given|the provided|the original|the source) (?:text|passage|document|"
    r"excerpt|article|post|prompt)\b|\bpersona description\b|\bdescribe (?:that|this|the|one) (?:person|individual)\b|"
    r"\bas a persona\b|\b(?:the|this|that|a|input|seed|your|my|our) persona\b|\bpersona'?s\b|"
    r"\b(?:is|was) likely (?:to be )?(?:the|a) (?:reader|writer|author)\b|以下文本|上述文本|这段文字|"
    # someone only by a relation to the text or to a character of it
    r"\b(?:related|connected|linked|relevant) to (?:the|this|that) (?:text|passage|article|post|story|document)\b|"
    r"\bthe (?:protagonist|main character|narrator)\b(?! of\b)",
    re.IGNORECASE,
)
_STATEMENT_KEYS = ("text", "passage", "document", "excerpt", "article", "post", "prompt", "persona", "describe",
                   "reader", "writer", "author", "likely", "related", "connected", "linked", "relevant", "protagonist",
                   "main character", "narrator", "文本", "文字")
# A first-person account ("Surgery, not a sport. I can bend to 110 degrees", "... so I lost 20 seconds")
# that never says who is speaking: a persona in the first person opens with the speaker ("A local
# resident ... I follow local news", "I teach yoga ...") or says what it is ("as a ...", "I serve as
# ..."); "I'm 34" says no more than the text did.
_FIRST_PERSON = re.compile(r"\bI (?!am\b)|\bI'(?!m\b)")
_SELF_DESCRIBED = re.compile(
    r"^\W*(?:an?|I|my)\s|\b(?:I am|I'm) (?!\d)|\b(?:I was an?|as an?|my name is|I (?:serve|work|worked|served) as|"
    r"I(?:'ve| have) been an?)\b",
    re.IGNORECASE,
)
# A generic head ("a person", "someone", "they are a ...") with nothing particular after it: every word
# after the head is one of these.
_GENERIC_HEAD = re.compile(
    r"^\W*(?:(?:an?|the|any|some|one)\s+)?(?:(?:skilled|young|older|typical|regular|average|ordinary|certain|"
    r"curious|interested|passionate)\s+)*(?:person|people|individual|someone|somebody|anyone|human|user|reader|"
    r"readers|customer|employee|professional|worker|they are|he is|she is|they're|he's|she's)\b",
    re.IGNORECASE,
)
# A category of people, or a thing (a recipe, a blog post) where a person should be.
_NOT_SOMEONE = re.compile(
    r"^(?:(?:all|any|some|many) )?(?:people|readers|customers|clients|users|anyone|anybody|everyone|everybody|fans|"
    r"members|visitors|those|individuals|viewers|consumers|citizens|audience|families|folks)\b(?!['’])|"
    r"^the (?:general )?public\b|"
    # a place or a name list: "Bathala, Punjab."
    r"^(?-i:(?:[A-Z][\w'’-]*\.?\s*){1,3}(?:,\s*(?:[A-Z][\w'’-]*\.?\s*){1,3})+\.?)$|"
    r"^(?:an?|the)\s+(?:[\w'’-]+,?\s+){0,3}?(?:recipe|text|article|post|blog|story|list|note|document|book|website|"
    r"tutorial|method|summary|overview|report|map|poem|song|video|podcast|newsletter)"
    r"(?:\s+(?:for|of|about|with|that|which|on|in|to)\b|[.!,]|$)|"
    # what is written or done instead of someone: "Review of the Gaggia ...", "Troubleshooting a paper jam"
    r"^(?:an?\s+|the\s+)?(?:[\w'’-]+\s+)?(?:review|listing|report|advertisement|ad|summary|overview|analysis|"
    r"tutorial|instructions|advice|information|relationship|comparison|introduction|discussion)\s+"
    r"(?:of|for|about|between|on|to)\b|^[a-z]+ing\s+(?:a|an|the|his|her|their|its|it|my|your|our|\d+)\b|"
    # a category without an article: "Bird lovers.", "Job seekers.", "Gamers who like Hollow Knight."
    r"^(?!(?:an?|the|i|my|one)\b)(?:[\w'’-]+\s+){0,3}(?:[\w'’-]+(?:ers|ors|ists|ians|ants|ents|ees)|[\w'’-]*(?:fans|"
    r"owners|parents|couples|families|kids|children|students|friends))\b(?:\s+(?:who|that|with|in|from|of|getting|"
    r"looking)\b|\W*$)|"
    # an act or a state instead of someone: "Demonstration of a CUDA_ERROR ...", "Explanation of exit codes"
    r"^(?:an?\s+|the\s+)?(?!(?:celebrity|personality|authority|deity)\b)[\w'’-]+(?:tion|sion|ment|ance|ence|ness|ity|ism)"
    r"\s+(?:of|for|about)\b|"
    # someone only by a relation to someone not described: "friend of the protagonist", "Patient of the surgeon"
    r"^(?:an?\s+|the\s+)?(?:[\w'’-]+\s+)?(?:friend|relative|colleague|co-?worker|neighbou?r|sibling|brother|sister|son|"
    r"daughter|parent|child|spouse|partner|acquaintance|patient|client|family member|relation)s?\s+(?:of|to)\s+"
    r"(?:the|this|that|his|her|their|my|our|your)(?:\s+[\w'’-]+){1,2}\W*$|"
    # keywords, not a description: "Tilburg, North-West, Canada", "cleaning, delivery, maintenance"
    r"^(?!(?:an?|the|i|my|as)\b)(?:\s*[^,.;!?\s\u3000-\u9fff]+(?:\s+[^,.;!?\s\u3000-\u9fff]+){0,2}\s*)"
    r"(?:,\s*[^,.;!?\s\u3000-\u9fff]+(?:\s+[^,.;!?\s\u3000-\u9fff]+){0,2}\s*){2,}\.?$",
    re.IGNORECASE,
)
_VAGUE = frozenset(
    "a an the and or of in on at to for with about who that which is are be being was were has have had their "
    "his her its they them he she it this these those some any many various different general other others "
    "person people individual someone somebody anyone human user reader readers customer employee professional "
    "worker skilled young old older typical regular average ordinary certain curious interested interest "
    "interests passionate enjoys enjoy likes like loves love wants want reads read reading learning learn learns "
    "knowledge information topic topics subject subjects field fields area areas industry work works working job "
    "life daily everyday things stuff new good great very really also always often likely probably text texts "
    "content article articles post posts well known knows know experience experienced expert skills skill "
    "dedicated hardworking hard motivated creative innovative helpful friendly same similar related relation "
    "relationship role roles responsibility responsibilities responsible goal goals customers clients client team "
    "member members company companies business businesses service services product products one ones whose whom "
    "something thing".split()
)
# How many characters make a word in scripts written without spaces between words.
_CHARS_PER_WORD = {"CJK": 1.7, "HIRAGANA": 2.5, "KATAKANA": 2.5, "THAI": 4.0, "LAO": 4.0, "KHMER": 4.0,
                   "MYANMAR": 4.0, "TIBETAN": 3.0}
# Words that do not make a description longer: articles, and "I am" of a first-person persona.
_FUNCTION_WORDS = frozenset(
    "a an the i am i'm im un une una uno le la les el los las der die das ein eine een het".split()
)
# "一位" / "一个" ("a") and "我是" ("I am") opening a Chinese persona.
_ZH_OPENING = re.compile(r"^(?:我是)?(?:一|某)?(?:位|个|個|名|種|种)?")
_WORD = re.compile(r"[^\W\d]+(?:['’-][^\W\d]+)*|\d+", re.UNICODE)  # snake_case is one word
_JOINERS = re.compile(r"['’_-]")


# The script a language is written in (its letters' Unicode names start with it); the rest are Latin.
_LANGUAGE_SCRIPTS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("zh", "yue", "wuu", "nan", "hak"), ("CJK",)), "ja": ("HIRAGANA",), "ko": ("HANGUL", "CJK"),
    **dict.fromkeys(("ru", "uk", "be", "bg", "mk", "kk", "ky", "tg", "mn", "tt", "ba", "cv", "ce", "os"), ("CYRILLIC",)),
    "sr": ("CYRILLIC", "LATIN"), "el": ("GREEK",), "hy": ("ARMENIAN",), "ka": ("GEORGIAN",),
    **dict.fromkeys(("ar", "fa", "ur", "ps", "ug", "sd", "ku"), ("ARABIC",)), **dict.fromkeys(("he", "yi"), ("HEBREW",)),
    **dict.fromkeys(("hi", "mr", "ne", "sa"), ("DEVANAGARI",)), **dict.fromkeys(("bn", "as"), ("BENGALI",)),
    "pa": ("GURMUKHI",), "gu": ("GUJARATI",), "ta": ("TAMIL",), "te": ("TELUGU",), "kn": ("KANNADA",),
    "ml": ("MALAYALAM",), "si": ("SINHALA",), "or": ("ORIYA",), "th": ("THAI",), "lo": ("LAO",), "km": ("KHMER",),
    "my": ("MYANMAR",), **dict.fromkeys(("bo", "dz"), ("TIBETAN",)), **dict.fromkeys(("am", "ti"), ("ETHIOPIC",)),
    "dv": ("THAANA",), "iu": ("CANADIAN",),
}


def language_scripts(languages: Sequence[str]) -> set[str]:
    """The scripts (`main_script` names) text in `languages` is written in: 'en' -> {'LATIN'}, 'zh' -> {'CJK'}."""
    return {script for code in languages for script in _LANGUAGE_SCRIPTS.get(code, ("LATIN",))}


_script_cache: dict[str, str] = {}


def _script(ch: str) -> str:
    """The script of a letter, as the first word of its Unicode name ('LATIN', 'CJK', 'CYRILLIC', ...)."""
    script = _script_cache.get(ch)
    if script is None:
        name = unicodedata.name(ch, "")
        script = "CJK" if name.startswith("CJK") else (name.split(" ", 1)[0] if name else "OTHER")
        if len(_script_cache) < 100_000:
            _script_cache[ch] = script
    return script


def script_counts(text: str) -> Counter[str]:
    """Letters per script ('LATIN', 'CJK', 'CYRILLIC', 'THAI', ...); ASCII text costs one check (and is
    counted by its length)."""
    if text.isascii():
        return Counter({"LATIN": len(text)})
    return Counter(_script(ch) if not ch.isascii() else "LATIN" for ch in text if ch.isalpha())


def word_count(text: str, scripts: Counter[str] | None = None) -> float:
    """Words in `text` that say something: articles and "I am" do not count; in a script written without
    spaces (Chinese, Japanese, Thai, ...) a word is a few characters (`_CHARS_PER_WORD`)."""
    scripts = scripts if scripts is not None else script_counts(text)
    unspaced = {s: n for s, n in scripts.items() if s in _CHARS_PER_WORD}
    if not unspaced:
        return float(sum(1 for w in _WORD.findall(text) if w.lower() not in _FUNCTION_WORDS))
    if "CJK" in unspaced:
        unspaced["CJK"] -= len(_ZH_OPENING.match(text.strip()).group(0))  # type: ignore[union-attr]
    spaced = " ".join(w for w in _WORD.findall(text) if _script(w[0]) not in _CHARS_PER_WORD or w[0].isascii())
    return sum(n / _CHARS_PER_WORD[s] for s, n in unspaced.items()) + word_count(spaced, Counter({"LATIN": 1}))


def main_script(scripts: Counter[str]) -> str:
    """The script most letters are in; Japanese (kana with or without kanji) is 'HIRAGANA'."""
    if not scripts:
        return "OTHER"
    main = scripts.most_common(1)[0][0]
    if main == "CJK" and (scripts["HIRAGANA"] or scripts["KATAKANA"]) or main == "KATAKANA":
        return "HIRAGANA"
    return main


def _tokens(text: str) -> list[str]:
    """Case-folded words, each CJK character a word of its own (for overlap with a source)."""
    out: list[str] = []
    for word in _WORD.findall(unicodedata.normalize("NFKC", text).casefold()):
        if word.isascii() or _script(word[0]) not in _CHARS_PER_WORD:
            out.append(_JOINERS.sub("", word))  # "water-damaged" and "waterdamaged" are one word
        else:
            out.extend(word)
    return out


def source_overlap(description: str, source: str, n: int = 3) -> float:
    """Share of the description's word n-grams that also occur in `source`: 1.0 for a verbatim copy of
    any part of it, or when all its words are in `source` (the source cut short or reordered); ~0.1-0.3
    for a persona that names a few of its details."""
    words = _tokens(description)
    src = _tokens(source)
    if len(words) >= 2 and set(words) <= set(src):
        return 1.0
    if len(words) < n:
        return 0.0
    grams = {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}
    found = {tuple(src[i : i + n]) for i in range(len(src) - n + 1)}
    return len(grams & found) / len(grams)


def copies_a_passage(description: str, source: str, words: int) -> bool:
    """Whether `description` holds `words` words in a row exactly as `source` has them (a weak model
    copies a sentence of the text and adds a clause: the share of copied phrases alone misses it).

        >>> copies_a_passage("The lab spent eight months drying a flooded register, a tradition.",
        ...                  "The lab spent eight months drying a flooded register in 2019.", 8)
        True
    """
    ours = _tokens(description)
    if len(ours) < words:
        return False
    theirs = _tokens(source)
    passages = {tuple(theirs[i : i + words]) for i in range(len(theirs) - words + 1)}
    return any(tuple(ours[i : i + words]) in passages for i in range(len(ours) - words + 1))


# Words that say nothing of who someone is, left out when a proposal is compared with its seed, and the
# words that end the seed's first noun phrase (the person it is: "A cardiac surgeon | in Toronto who ...").
_FILLER = frozenset(
    "a an the and or of in on at to for with about who whose who's that which is are was were be been has have had "
    "his her its their they them he she it this these those as by from into out up".split()
)
_PHRASE_END = frozenset(
    "who whose that which in at for of with from on to by and or near across around during under over into "
    "through".split()
)
_PARTS = re.compile(r"[^\W_]+")


def _same_word(ours: tuple[str, ...], theirs: tuple[str, ...]) -> bool:
    """Whether two words (each as the parts of a hyphenated compound) are one word in other forms: every
    part of the shorter in the longer ("year-old" of "7-year-old" in "seven-year-old"), a part the same or
    with four letters in common at the start ("planning" and "plans", "modeling" and "modelling")."""
    short, long = sorted((ours, theirs), key=len)
    return all(any(a == b or (len(a) >= 4 and len(b) >= 4 and a[:4] == b[:4]) for b in long) for a in short)


def _heads(text: str) -> list[tuple[str, ...]]:
    """The last word of the first noun phrase of `text` (the person it is: "A cardiac surgeon | in Toronto
    who ..."), and of the phrase after a leading name ("Echo-police, | a game modder who ...")."""
    heads = []
    for chunk in re.split(r"[,;:(]", text.casefold(), maxsplit=2)[:2]:
        phrase: list[str] = []
        for word in _WORD.findall(chunk):
            if word in _PHRASE_END or (phrase and word.endswith("ing")):
                break
            if word not in _FILLER:
                phrase.append(word)
        if phrase:
            heads.append(tuple(_PARTS.findall(phrase[-1])))
    return heads


def restates_seed(description: str, seed: str) -> bool:
    """Whether a proposal is its seed restated: it is the person the seed is (the same head noun) and adds
    no word of its own, or one word while it keeps all of the seed or cuts it short ("Kerbal Surgeon in
    Toronto"). A different person of the same world names a role of their own ("A cardiac nurse in
    Toronto", "A surgical resident mentored by a cardiac surgeon") or changes a detail: one word for
    another ("... nurse in Osaka, ..." for "... nurse in Lima, ...").

        >>> restates_seed("Kerbal Surgeon in Toronto", "A cardiac surgeon in Toronto who mentors residents")
        True
        >>> restates_seed("A cardiac nurse in Toronto", "A cardiac surgeon in Toronto who mentors residents")
        False
    """
    ours = [tuple(_PARTS.findall(w)) for w in _WORD.findall(description.casefold()) if w not in _FILLER]
    seed_heads = _heads(seed)[:1]
    if len(ours) < 3 or not seed_heads or not any(_same_word(h, seed_heads[0]) for h in _heads(description)):
        return False
    theirs = [tuple(_PARTS.findall(w)) for w in _WORD.findall(seed.casefold()) if w not in _FILLER]
    added = sum(1 for w in ours if not any(_same_word(w, t) for t in theirs))
    dropped = sum(1 for t in theirs if not any(_same_word(w, t) for w in ours))
    return added == 0 or (added == 1 and dropped != 1)


def tidy_description(text: str) -> str:
    """A proposed description as one line without what a model wraps one list item in: a leading
    number or bullet, markdown emphasis, quotes; whitespace collapsed. Weak models number their answers.

        >>> tidy_description('1. the supplier of climate risk modelling')
        'the supplier of climate risk modelling'
        >>> tidy_description('  **"A nurse  who works nights."** ')
        'A nurse who works nights.'
    """
    text = " ".join(text.split())
    while True:
        before = text
        text = _ITEM_MARK.sub("", text, count=1).rstrip("*_` ").strip()
        if len(text) > 1 and _QUOTES.get(text[0]) == text[-1]:
            text = text[1:-1].strip()
        if text == before:
            return text


def _is_generic(text: str, lowered: str) -> bool:
    """A generic or placeholder description, or a generic head with only vague words after it."""
    if _GENERIC.match(text) or _NOT_SOMEONE.match(text) or (
            any(k in lowered for k in _PLACEHOLDER_KEYS) and _PLACEHOLDER.search(text)):
        return True
    words = [w for w in _WORD.findall(lowered) if w not in _FUNCTION_WORDS]
    if words and all(w in _VAGUE for w in words):  # a bare role with nothing particular: "service worker"
        return True
    head = _GENERIC_HEAD.match(text)
    if head is None:
        return False
    rest = [w for w in _WORD.findall(text[head.end():].lower()) if w not in _VAGUE]
    return len(rest) < 2


def _word_repeated(tokens: list[str]) -> bool:
    """A word three times in a row ("baker baker baker")."""
    return any(a == b == c for a, b, c in zip(tokens, tokens[1:], tokens[2:]))


def _may(lowered: str, keys: tuple[str, ...]) -> bool:
    """Whether a pattern can match at all: it needs one of `keys` (a cheap test before the regex, which
    most descriptions then skip)."""
    return any(key in lowered for key in keys)


def _textual_checks(text: str, config: FilterConfig, source: str | None = None) -> dict[str, str]:
    """The checks that need only the text (and the source it came from): check name -> reason for each failure."""
    failed: dict[str, str] = {}
    stripped = text.strip()
    lowered = stripped.lower()
    scripts = script_counts(stripped)
    words = word_count(stripped, scripts)
    if words < config.min_words:
        failed["too_short"] = f"too short ({words:.3g} words < {config.min_words})"
    if _is_generic(stripped, lowered):
        failed["generic"] = "a generic or placeholder description, not a particular person"
    if source and (overlap := source_overlap(stripped, source)) >= config.max_source_overlap:
        failed["source_copy"] = f"a copy of the text it was made from ({overlap:.0%} of its phrases), not a new person"
    elif source and copies_a_passage(stripped, source, config.max_copied_words):
        failed["source_copy"] = f"{config.max_copied_words} or more words in a row copied from the text it was made from"
    if _may(lowered, _SLOT_KEYS) and (slot := _SLOT.search(stripped)):
        failed["template"] = f"an unfilled template slot ({slot.group(0)!r})"
    if (_STATEMENT_START.search(stripped) or (_may(lowered, _STATEMENT_KEYS) and _STATEMENT_ANYWHERE.search(stripped))
            or ("I" in stripped and _FIRST_PERSON.search(stripped) and not _SELF_DESCRIBED.search(stripped))):
        failed["statement"] = "about the text, the task or another persona, not a description of someone"
    if len(stripped) > config.max_chars:
        failed["too_long"] = f"too long ({len(stripped)} > {config.max_chars} characters)"
    if re.search(r"(.)\1{%d,}" % config.max_char_run, stripped):
        failed["repetition"] = f"a character repeated more than {config.max_char_run} times"
    elif _word_repeated(lowered.split()):
        failed["repetition"] = "a word repeated three times in a row"
    if "\n" in stripped and (len(_LIST.findall(stripped)) >= 2 or stripped.count("\n") >= 2):
        failed["list"] = "a list or several lines, not one description"
    if config.languages:
        script = main_script(scripts)
        if script not in language_scripts(config.languages):
            failed["language"] = f"{script.lower()} script: not an accepted language ({', '.join(config.languages)})"
    if _may(lowered, _CHILD_KEYS) and _CHILD_IN_CHARGE.search(stripped):
        failed["implausible"] = "a young child in an adult's position of responsibility"
    return failed


def _verdict(failed: dict[str, str]) -> FilterVerdict:
    reasons: dict[str, str] = {}
    for check, reason in failed.items():
        criterion = CHECKS[check]
        reasons[criterion] = f"{reasons[criterion]}; {reason}" if criterion in reasons else reason
    return FilterVerdict(ok=not failed, reasons=reasons, checks=list(failed))


def cheap_checks(
    descriptions: Sequence[str],
    seeds: Sequence[str | None] | None = None,
    config: FilterConfig | None = None,
    embed_fn: Callable[[Sequence[str]], Any] | None = None,
    sources: Sequence[str | None] | None = None,
    relevance: bool = True,
    probe: bool = True,
) -> list[FilterVerdict]:
    """Cheap verdicts for many descriptions, each compared with the text it was extracted from
    (`sources[i]`, if given) and with the persona it was proposed from (`seeds[i]`: not restated, and,
    with `relevance`, related), and, with `probe` and the config's `person_probe`, read by the person
    probe; relevance and the probe share one batched embedding pass."""
    config = config or FilterConfig()
    seeds = list(seeds) if seeds is not None else [None] * len(descriptions)
    sources = list(sources) if sources is not None else [None] * len(descriptions)
    failed = [_textual_checks(d, config, src) for d, src in zip(descriptions, sources)]
    for i, seed in enumerate(seeds):
        if seed and "source_copy" not in failed[i] and restates_seed(descriptions[i], seed):
            failed[i]["source_copy"] = "the seed restated: its role kept, at most one word added"
    cosines: dict[int, float] = {}
    with_seed = [i for i, s in enumerate(seeds) if s] if relevance else []
    # The person probe reads the embedding, and the encoder reads English: Latin-script descriptions
    # that passed every other check (the rest are decided already).
    person = load_probe() if probe and config.person_probe else None
    to_probe = [i for i, f in enumerate(failed) if person is not None and not f
                and main_script(script_counts(descriptions[i])) == "LATIN"]
    need = sorted(set(with_seed) | set(to_probe))
    if need:
        if embed_fn is None:
            from personagraph.dedup.embedding import embed as embed_fn
        vecs = np.asarray(embed_fn([descriptions[i] for i in need] + [seeds[i] for i in with_seed]))
        row = {i: k for k, i in enumerate(need)}
        for k, i in enumerate(with_seed):
            cos = cosines[i] = float(vecs[row[i]] @ vecs[len(need) + k])
            if cos < config.min_relevance:
                failed[i]["relevance"] = f"unrelated to the seed persona (cosine {cos:.2f} < {config.min_relevance})"
        if person is not None and to_probe:
            for i, p in zip(to_probe, person.not_person(vecs[[row[i] for i in to_probe]])):
                if p > person.threshold:
                    failed[i]["not_a_person"] = (f"reads as a thing, an event or a text retold, not a person "
                                                 f"(person probe {p:.2f} > {person.threshold:.2f})")
    verdicts = [_verdict(f) for f in failed]
    for i, cos in cosines.items():
        verdicts[i].relevance = cos
    return verdicts


def cheap_check(description: str, seed_description: str | None = None, config: FilterConfig | None = None,
                source: str | None = None, relevance: bool = True, probe: bool = True) -> FilterVerdict:
    """Cheap verdict for one description (usable inline during extraction and expansion)."""
    return cheap_checks([description], [seed_description], config, sources=[source], relevance=relevance,
                        probe=probe)[0]


def verdict_reasons(verdict: FilterVerdict) -> list[str]:
    """A failed verdict as the `filter_reasons` a persona rejected inline carries: 'criterion: reason' each."""
    return [f"{criterion}: {reason}" for criterion, reason in verdict.reasons.items()]


def judge_messages(description: str, seed: str | None, relation: str | None, lang: str = "en") -> list[dict[str, str]]:
    """The judge prompt for one persona, with the four rubric files composed into it."""
    criteria = "\n\n".join(prompts.load(f"filter/{c}", lang).parts[0][1].strip() for c in CRITERIA)
    return prompts.load("filter/judge", lang).render(
        criteria=criteria, seed=seed or "(none: an imported persona)", relation=relation or "(none)",
        description=description,
    )


def judged_failures(scores: JudgeScores, config: FilterConfig) -> dict[str, str]:
    """Criteria whose judge score is below its threshold, each with the judge's reason."""
    out = {}
    for c in CRITERIA:
        s: CriterionScore = getattr(scores, c)
        if s.score < config.min_scores.get(c, 1):
            out[c] = s.reason
    return out


class FilterItem(BaseModel):
    """A persona waiting for a verdict, with the seed and relation it was proposed from (if any)."""

    id: str
    description: str
    seed: str | None = None
    relation: str | None = None


class FilterSummary(StageSummary):
    """What a filter run did."""

    headline: ClassVar[tuple[str, ...]] = ("examined", "accepted", "rejected", "judge_failed")

    examined: int = 0
    accepted: int = 0
    rejected: int = 0
    judge_failed: int = Field(default=0, description="Judge calls that failed; these stay undecided for a rerun")
    rejected_by: dict[str, int] = Field(default_factory=dict, description="Rejections per criterion")
    by_stage: dict[str, int] = Field(default_factory=dict, description="Rejections by the cheap checks vs the judge")
    by_check: dict[str, int] = Field(default_factory=dict, description="Failures per cheap check (`CHECKS`)")


def pending_items(store: GraphStore) -> list[FilterItem]:
    """Live personas without a filter verdict, each with its nearest lower-hop neighbour as seed."""
    todo = [n for n in store.iter_personas() if n.get("filtered_at") is None]
    seeds = store.seeds_of([n["id"] for n in todo if int(n.get("hop") or 0) > 0])
    return [
        FilterItem(id=n["id"], description=n["description"], seed=seeds.get(n["id"], {}).get("seed"),
                   relation=seeds.get(n["id"], {}).get("relation"))
        for n in todo
    ]


def _row(item: FilterItem, failed: dict[str, str], stage: str, scores: JudgeScores | None) -> dict[str, Any]:
    props: dict[str, Any] = {
        "status": "rejected" if failed else "accepted",
        "filter_failed": sorted(failed),
        "filter_stage": stage,
        "filtered_at": time.time(),
    }
    for c in CRITERIA:
        if scores is not None:
            props[f"score_{c}"] = getattr(scores, c).score
            props[f"reason_{c}"] = getattr(scores, c).reason
        elif c in failed:
            props[f"reason_{c}"] = failed[c]
    return {"id": item.id, "props": props}


class Filter(Stage[FilterSummary]):
    """Give every live persona without a verdict one: cheap checks, then the LLM judge (with `judge`).

    Without the judge (or with `config.use_llm` off) the cheap checks decide alone. Verdicts are
    written in batches as they come, so an interrupted run keeps what it decided.
    """

    name: ClassVar[str] = "filter"
    shardable: ClassVar[bool] = True
    config: FilterConfig = Field(default_factory=FilterConfig)
    judge: bool = Field(default=True, description="Ask the LLM judge about what passes the cheap checks")
    lang: str = Field(default=Lang.en, description="Judge prompt language: en or zh")

    @property
    def uses_judge(self) -> bool:
        return self.judge and self.config.use_llm

    def _triage(self, store: GraphStore, summary: FilterSummary) -> tuple[list[tuple[FilterItem, dict[str, str]]], list[FilterItem]]:
        """(decided by the cheap checks with their failures, left for the judge)."""
        items = [item for item in pending_items(store) if self.shard.owns(item.id)]
        summary.examined = len(items)
        verdicts = cheap_checks([i.description for i in items], [i.seed for i in items], self.config)
        decided: list[tuple[FilterItem, dict[str, str]]] = []
        to_judge: list[FilterItem] = []
        for item, verdict in zip(items, verdicts):
            for check in verdict.checks:
                summary.by_check[check] = summary.by_check.get(check, 0) + 1
            if not verdict.ok or not self.uses_judge:
                decided.append((item, verdict.reasons))
            else:
                to_judge.append(item)
        return decided, to_judge

    async def run(self, ctx: StageContext, run_id: str) -> FilterSummary:
        store = ctx.store
        summary = FilterSummary()
        decided, to_judge = self._triage(store, summary)
        rows: list[dict[str, Any]] = []
        done = 0

        def flush() -> None:
            if rows:
                store.set_properties(rows)
                rows.clear()

        def record(item: FilterItem, failed: dict[str, str], stage: str, scores: JudgeScores | None = None) -> None:
            nonlocal done
            rows.append(_row(item, failed, stage, scores))
            if failed:
                summary.rejected += 1
                summary.by_stage[stage] = summary.by_stage.get(stage, 0) + 1
                for c in failed:
                    summary.rejected_by[c] = summary.rejected_by.get(c, 0) + 1
            else:
                summary.accepted += 1
            if len(rows) >= store.options.batch_size:
                flush()
            done += 1
            ctx.progress("filtering", done, summary.examined)

        for item, failed in decided:
            record(item, failed, "cheap")
        try:
            if to_judge:
                async for result in ctx.llm.stream(_judge_request(item, self.lang) for item in to_judge):
                    item: FilterItem = result.request.meta
                    if result.ok:
                        scores: JudgeScores = result.value
                        record(item, judged_failures(scores, self.config), "llm", scores)
                    else:
                        summary.judge_failed += 1
                        done += 1
                        ctx.progress("filtering", done, summary.examined)
        finally:
            flush()  # the verdicts so far stay written when the judge's endpoint goes down
        return summary

    async def estimate(self, ctx: StageContext) -> StageEstimate:
        """How many personas the cheap checks would decide, and the judge calls for the rest."""
        summary = FilterSummary()
        decided, to_judge = self._triage(ctx.store, summary)
        rejected = sum(1 for _, failed in decided if failed)
        lines = [("personas without a verdict", f"{summary.examined:,}"),
                 ("rejected by the cheap checks", f"{rejected:,}"),
                 ("left for the judge", f"{len(to_judge):,}" if self.uses_judge else "none: the judge is off")]
        llm = ctx.llm.estimate(_judge_request(item, self.lang) for item in to_judge) if to_judge else None
        return StageEstimate(stage=self.name, lines=lines, llm=llm)


def _judge_request(item: FilterItem, lang: str) -> Any:
    from personagraph.llm import LLMRequest

    return LLMRequest(
        key=f"filter/{item.id}", messages=judge_messages(item.description, item.seed, item.relation, lang),
        schema=JudgeScores, params={"temperature": 0.0}, meta=item,
    )


class FilterReport(BaseModel):
    """Counts per status and per failed criterion, with a few examples of each rejection."""

    status: dict[str, int]
    rejected_by: dict[str, int]
    examples: dict[str, list[tuple[str, str]]] = Field(description="criterion -> (description, reason)")


def filter_report(store: GraphStore, examples: int = 3) -> FilterReport:
    """What the filter decided so far, read from the nodes."""
    status: Counter[str] = Counter()
    rejected_by: Counter[str] = Counter()
    shown: dict[str, list[tuple[str, str]]] = {}
    for node in store.iter_personas(statuses=None):
        inline = node.get("filter_reasons") or []  # rejected by the cheap checks as extract or expand wrote it
        decided = node.get("filtered_at") is not None or node.get("status") == "merged" or bool(inline)
        status[node.get("status", "?") if decided else "unfiltered"] += 1
        if node.get("status") != "rejected":
            continue
        failed = [(c, node.get(f"reason_{c}", "")) for c in node.get("filter_failed") or []]
        if not failed:
            failed = [(c.strip(), reason.strip()) for c, _, reason in (str(r).partition(":") for r in inline)]
        for c, reason in failed:
            rejected_by[c] += 1
            if len(shown.setdefault(c, [])) < examples:
                shown[c].append((node["description"], reason))
    return FilterReport(status=dict(status), rejected_by=dict(rejected_by), examples=shown)


def purge_rejected(store: GraphStore) -> int:
    """Delete rejected personas and their edges; returns how many were deleted."""
    return store.purge_rejected()
