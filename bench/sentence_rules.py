"""Sentence ends outside English: espeak-ng's own (what voxstack ships) against pysbd, each held to piper-tts.

piper-tts speaks one utterance per sentence, and its sentences are the ones espeak-ng ends while reading
the text (``piper.phonemize_espeak``). For French and German, 50 texts each (abbreviations, ordinals,
decimal commas, dates, times, quotes, ellipses, run-on sentences), every method below splits the text and
phonemizes each piece with voxstack's ``EspeakFrontend``; a text agrees when it gives piper-tts's number
of sentences with identical phoneme ids in each.

- ``espeak-ng (voxstack)``: the frontend as shipped, ``blocks.components.sentence_rules.EspeakRules``.
- ``pysbd``: pysbd's segmenter (per-language abbreviations) cuts the sentences; the frontend reads a
  period espeak-ng would end a sentence at, inside a segment, as a space (as it does for English).

Every disagreement is listed with the text, both splits and a reason. Writes a table,
``sentence_rules.json`` and ``sentence_rules.png``.

Run: ``python -m bench.sentence_rules [--languages fr de] [--out bench/results] [--strict]``
(``--strict``: exit 1 where the shipped frontend splits like piper-tts but its ids differ).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from piper.config import PiperConfig
from piper.voice import PiperVoice

from bench.machine import machine_info, markdown_table
from bench.output import figure, save
from blocks.components.espeak import Espeak
from blocks.components.frontend import EspeakFrontend
from blocks.components.sentence_rules import EspeakRules
from blocks.components.text import Span
from blocks.config import FrontendConfig

try:
    import pysbd
except ImportError as error:  # a bench-only dependency
    raise SystemExit("bench.sentence_rules needs pysbd: pip install pysbd") from error

ROOT = Path(__file__).resolve().parent.parent
VOICE_CONFIG = ROOT / "addons" / "piper-joe" / "networks" / "voice.json"
"""A piper voice config; its ``phoneme_id_map`` is piper's standard espeak map, its espeak voice is swapped."""

SHIPPED, PYSBD = "espeak-ng (voxstack)", "pysbd"
METHODS = (SHIPPED, PYSBD)

TEXTS: dict[str, list[str]] = {
    "fr": [
        "M. Dupont est arrivé hier soir. Il était fatigué.",
        "Mme Martin habite au 12, rue de la Paix.",
        "Mlle Girard et Mme Leroy sont là. Elles attendent.",
        "Il faut apporter des fruits, p. ex. des pommes, des poires, etc. Le reste est fourni.",
        "Jules César est mort en 44 av. J.-C. à Rome.",
        "Le taux est passé de 3,5 % à 4,25 % en un an.",
        "La réunion aura lieu le 14/07/2024 à 9 h 30. Soyez à l'heure !",
        "Il est 18h45. Le train part à 19h02.",
        "« Tu viens ? » demanda-t-elle. « Oui », répondit-il.",
        "Il hésita… puis il entra dans la pièce.",
        "Quoi ?! Tu as vraiment fait ça ?",
        "Attention ! Le sol est glissant ! Marchez lentement.",
        "le vieux pêcheur qui vivait depuis toujours dans ce petit village de la côte bretonne regardait chaque "
        "matin la mer grise en se demandant si les bateaux reviendraient un jour aussi nombreux qu'au temps de sa "
        "jeunesse quand le port débordait de monde et de bruit",
        "Voir le chap. 3, p. 25 et suiv. pour les détails.",
        "Le Dr Lambert a reçu le Pr. Morel à 10 h.",
        "La population atteint 2 345 678 habitants, soit 1,2 million de plus qu'en 1990.",
        "Le prix est de 12,99 €. C'est une affaire !",
        "Il est né le 1er janvier 1980. Elle, le 2e jour de mai.",
        "Louis XIV régna de 1643 à 1715. Son règne fut long.",
        "Cf. l'article 5 du règlement intérieur.",
        "Le colis pèse 2,5 kg et mesure 30 cm. Il arrivera lundi.",
        "N.B. : les inscriptions ferment vendredi.",
        "Elle a écrit : « Je reviendrai. » Puis elle est partie.",
        "Qu'en penses-tu ? Moi, je ne sais pas… Peut-être demain.",
        "La S.N.C.F. annonce des retards. La R.A.T.P. aussi.",
        "Vous trouverez tout sur www.exemple.fr. Merci de votre visite.",
        "Écrivez à contact@exemple.fr avant le 3 mars.",
        "Le score final était de 3 à 1. Quelle soirée !",
        "Il a lu les tomes I, II et III. Le tome IV sort en 2025.",
        "St-Étienne et Ste-Foy sont des villes. St. Louis aussi.",
        "Env. 300 personnes étaient présentes, dont M. et Mme Durand.",
        "Le Ier siècle av. J.-C. fut agité. Le IIe siècle apr. J.-C. aussi.",
        "« Pourquoi ? » « Parce que ! » Voilà tout.",
        "Tél. : 01 23 45 67 89. Fax : 01 23 45 67 90.",
        "Il pleuvait. Il neigeait. Il gelait. Puis le soleil revint.",
        "Mon adresse : 5 bis, av. Victor-Hugo, 75016 Paris.",
        "Le match commence à 20 h. Les portes ouvrent à 19 h.",
        "C'était en 1789... La Révolution commençait.",
        "Le PIB a crû de 0,7 % au 2e trim. 2023.",
        "Et toi ?Tu ne dis rien ?",
        "Le numéro 3. Le numéro 4. Le numéro 5.",
        "J'ai acheté du pain, du lait, des œufs, etc., puis je suis rentré.",
        "Il a dit « non »… Et il est parti sans un mot.",
        "après avoir traversé la forêt puis la rivière et enfin les collines couvertes de vignes les voyageurs "
        "épuisés arrivèrent au village où personne ne les attendait plus depuis des semaines",
        "Art. 12 : le locataire doit payer avant le 5 du mois.",
        "Pages 10 à 15, cf. fig. 2 et tab. 4.",
        "« Bonjour, M. le Maire ! » lança-t-il.",
        "Le 8 mai 1945, la guerre prit fin en Europe. Le 2 sept. 1945, en Asie.",
        "Il mesure 1,85 m. Elle, 1,70 m.",
        "Ah ! Oh ! Eh bien… Que dire ?",
    ],
    "de": [
        "Das ist z. B. ein schwieriger Fall.",
        "Dr. Müller kommt um 10 Uhr. Er bringt die Unterlagen mit.",
        "Äpfel, Birnen, Kirschen usw. sind im Angebot.",
        "Das Buch bzw. der Film war ein Erfolg.",
        "Siehe S. 5 und S. 12 für weitere Details.",
        "Am 3. Oktober ist ein Feiertag.",
        "Er wurde am 24. Dezember 1990 geboren. Seine Schwester am 1. Mai 1993.",
        "Der Preis beträgt 3,5 Prozent. Das sind 12,99 Euro.",
        "Es ist 14:30 Uhr. Der Zug fährt um 15.45 Uhr.",
        "„Kommst du mit?“, fragte sie. „Ja“, sagte er.",
        "Er zögerte… dann trat er ein.",
        "Was?! Das hast du wirklich getan?",
        "Vorsicht! Der Boden ist glatt! Langsam gehen.",
        "der alte Fischer der schon immer in diesem kleinen Dorf an der Nordseeküste gelebt hatte schaute jeden "
        "Morgen auf das graue Meer hinaus und fragte sich ob die Boote jemals wieder so zahlreich zurückkehren "
        "würden wie in den Tagen seiner Jugend",
        "Prof. Dr. Schmidt hält heute keine Vorlesung.",
        "Die Stadt hat ca. 1,2 Mio. Einwohner.",
        "Ludwig XIV. regierte lange. Friedrich II. auch.",
        "Die GmbH & Co. KG wurde 2010 gegründet.",
        "Vgl. Abs. 2 und Nr. 7 der Verordnung.",
        "Das war im 19. Jh. üblich. Heute nicht mehr.",
        "Die Sitzung ist am 14.07.2024 um 9 Uhr. Bitte pünktlich sein!",
        "Er sagte: „Ich komme morgen.“ Dann ging er.",
        "Herr Meier, Frau Schulz u. a. waren anwesend.",
        "Das Paket wiegt 2,5 kg und ist 30 cm lang. Es kommt am Montag.",
        "Die Einwohnerzahl liegt bei 83.200.000 Menschen.",
        "Sie wohnt in der Goethestr. 12 in Berlin.",
        "Wir treffen uns um 8. Danach gehen wir essen.",
        "Der 2. Weltkrieg endete 1945. Der 1. Weltkrieg 1918.",
        "Mehr Infos unter www.beispiel.de. Vielen Dank!",
        "Schreiben Sie an info@beispiel.de bis zum 3. März.",
        "Das Spiel endete 3:1. Was für ein Abend!",
        "Die Firma Müller & Söhne e. V. lädt ein.",
        "Tel.: 030 123456. Fax: 030 654321.",
        "Es regnete. Es schneite. Es fror. Dann kam die Sonne.",
        "Im Jahr 1989... die Mauer fiel.",
        "Das BIP wuchs im 2. Quartal um 0,7 %.",
        "Das heißt, d. h. im Klartext: nein.",
        "Na und?Was soll's? Weiter geht's.",
        "Nr. 3. Nr. 4. Nr. 5.",
        "Er kaufte Brot, Milch, Eier usw., dann ging er nach Hause.",
        "Sie sagte „nein“… und ging ohne ein Wort.",
        "nachdem die Reisenden den Wald und den Fluss und schließlich die mit Reben bedeckten Hügel durchquert "
        "hatten erreichten sie erschöpft das Dorf in dem niemand mehr mit ihnen gerechnet hatte",
        "Art. 5 Abs. 1 GG schützt die Meinungsfreiheit.",
        "„Guten Tag, Herr Dr. Weber!“, rief er.",
        "Am 8. Mai 1945 endete der Krieg in Europa. Am 2. Sept. 1945 in Asien.",
        "Er ist 1,85 m groß. Sie 1,70 m.",
        "Ach! Oh! Na ja… Was soll man sagen?",
        "Die Temperatur fiel auf -5,5 °C. Morgen wird es wärmer.",
        "Seine Tel.-Nr. ist unbekannt, s. o.",
        "Der Vertrag gilt ab dem 1. 1. 2025 bzw. ab Unterzeichnung.",
    ],
}


class PysbdRules(EspeakRules):
    """pysbd's sentences (its language's abbreviations, ``clean=False`` so offsets are the input's)."""

    def __init__(self, espeak: Espeak, language: str) -> None:
        super().__init__(espeak)
        self.segmenter = pysbd.Segmenter(language=language, clean=False, char_span=True)

    def sentences(self, text: str) -> list[Span]:
        found = []
        for segment in self.segmenter.segment(text):
            piece = text[segment.start:segment.end]
            if piece.strip():
                lead = len(piece) - len(piece.lstrip())
                found.append(Span(segment.start + lead, segment.start + len(piece.rstrip()), piece.strip()))
        return found


def piper_voice(language: str) -> PiperVoice:
    """piper-tts's own runtime for ``language`` (no network: only its phonemizer and id map are used)."""
    config = json.loads(VOICE_CONFIG.read_text(encoding="utf-8"))
    config["espeak"] = {"voice": language}
    return PiperVoice(session=None, config=PiperConfig.from_dict(config))  # type: ignore[arg-type]


def frontends(language: str) -> dict[str, EspeakFrontend]:
    """Each method as a frontend: the shipped rules, or the shipped frontend given other sentence rules."""
    id_map = json.loads(VOICE_CONFIG.read_text(encoding="utf-8"))["phoneme_id_map"]
    made = {name: EspeakFrontend(options=FrontendConfig(voice=language, phoneme_id_map=id_map)) for name in METHODS}
    made[PYSBD].rules = PysbdRules(made[PYSBD].espeak, language)
    return made


def piper_split(voice: PiperVoice, text: str) -> list[dict[str, Any]]:
    return [{"phonemes": "".join(sentence), "ids": voice.phonemes_to_ids(sentence)}
            for sentence in voice.phonemize(text)]


def frontend_split(frontend: EspeakFrontend, text: str) -> list[dict[str, Any]]:
    """The utterances voxstack speaks (``EspeakFrontend.utterances``), with their text and offsets."""
    return [{"text": u.span.text, "start": u.span.start, "end": u.span.end, "ids": list(u.ids)}
            for u in frontend.utterances(text)]


def marked(text: str, cut: int) -> str:
    """A few words either side of ``cut``, the cut shown as ``|``."""
    return f"...{text[max(0, cut - 18):cut]}|{text[cut:cut + 12]}..."


_ESPEAK_PERIOD = "espeak-ng ends a sentence at any period and space not followed by a lowercase letter"


def reason(name: str, text: str, found: list[dict[str, Any]], reference: list[dict[str, Any]],
           known: Callable[[str], bool], same_ids: bool) -> str:
    """Why a method's split of ``text`` is not piper-tts's, from where each cuts the text.

    ``reference``: the shipped frontend's split, whose cuts are piper-tts's where its ids are (``same_ids``).
    """
    if not same_ids:
        return "no reference cuts: the shipped frontend does not give piper-tts's ids either"
    ours = [s["end"] for s in found[:-1]]
    theirs = [s["end"] for s in reference[:-1]]
    said = []
    for cut in ours:
        if cut in theirs:
            continue
        word, after = text[:cut].split()[-1], text[cut:].lstrip()
        if word.endswith(".."):
            why = " (pysbd ends a sentence at '...', cutting after its second dot; espeak-ng reads '...' as a pause)"
        elif cut < len(text) and not text[cut].isspace():
            why = f" (followed by {text[cut]!r}, not a space: espeak-ng ends no sentence there)"
        elif after[:1].isdigit() and after.split()[0].rstrip(".").isdigit() and after.split()[0].endswith("."):
            why = f" (pysbd takes {after.split()[0]!r} for a numbered-list item and cuts before it)"
        elif after[:1].islower():
            why = " (a lowercase word follows: espeak-ng ends no sentence there)"
        else:
            why = ""
        said.append(f"{name} ends a sentence after {word!r} ({marked(text, cut)}); piper-tts does not" + why)
    for cut in theirs:
        if cut in ours:
            continue
        word, after = text[:cut].split()[-1], text[cut:].lstrip()
        stem = word.rstrip(".").split(".")[-1].lower()
        if after[:1] and after[0] in "»”“\"'":
            why = " (a closing quote follows the mark: espeak-ng ends the sentence at the mark, pysbd does not)"
        elif word.endswith(".") and known(stem):
            why = f" ({stem!r} is one of pysbd's abbreviations; {_ESPEAK_PERIOD})"
        elif word.endswith(".") and word[:-1].isdigit():
            why = f" (a number then a period: an ordinal or a date to pysbd; {_ESPEAK_PERIOD})"
        elif word.endswith(".") and len(stem) <= 2:
            why = f" (an initial or short abbreviation pysbd does not cut after; {_ESPEAK_PERIOD})"
        else:
            why = ""
        said.append(f"piper-tts ends a sentence after {word!r} ({marked(text, cut)}); {name} does not" + why)
    if not said:
        for number, (a, b) in enumerate(zip(found, reference, strict=False)):
            if a["ids"] != b["ids"]:
                said.append(f"same cuts, ids differ in sentence {number + 1} ({a['text']!r})")
                break
    return "; ".join(said) or "splits alike, ids differ"


def measure(language: str) -> dict[str, Any]:
    voice = piper_voice(language)
    made = frontends(language)
    abbreviations = {a.lower() for a in made[PYSBD].rules.segmenter.language_module.Abbreviation.ABBREVIATIONS}
    texts = []
    for text in TEXTS[language]:
        reference = piper_split(voice, text)
        entry: dict[str, Any] = {"text": text, "piper": reference}
        splits = {name: frontend_split(frontend, text) for name, frontend in made.items()}
        shipped_ids = [s["ids"] for s in splits[SHIPPED]] == [s["ids"] for s in reference]
        for name, found in splits.items():
            same_count = len(found) == len(reference)
            same_ids = same_count and all(a["ids"] == b["ids"] for a, b in zip(found, reference, strict=True))
            entry[name] = {
                "sentences": found,
                "same_count": same_count,
                "same_ids": same_ids,
                "reason": None if same_ids else reason(name, text, found, splits[SHIPPED],
                                                       abbreviations.__contains__, shipped_ids),
            }
        texts.append(entry)
    return {"language": language, "texts": texts}


def summary(result: dict[str, Any]) -> list[dict[str, Any]]:
    texts = result["texts"]
    return [{
        "language": result["language"],
        "method": name,
        "texts": len(texts),
        "same sentence count": sum(t[name]["same_count"] for t in texts),
        "agree (same count, identical ids)": sum(t[name]["same_ids"] for t in texts),
        "same count, ids differ": sum(t[name]["same_count"] and not t[name]["same_ids"] for t in texts),
    } for name in METHODS]


def disagreements(result: dict[str, Any]) -> str:
    lines = []
    for name in METHODS:
        wrong = [t for t in result["texts"] if not t[name]["same_ids"]]
        lines.append(f"\n### {result['language']}, {name}: {len(wrong)} of {len(result['texts'])} disagree\n")
        for t in wrong:
            lines.append(f"- {t['text']!r}")
            lines.append(f"  - piper-tts ({len(t['piper'])}): {[s['phonemes'] for s in t['piper']]}")
            lines.append(f"  - {name} ({len(t[name]['sentences'])}): {[s['text'] for s in t[name]['sentences']]}")
            lines.append(f"  - why: {t[name]['reason']}")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    languages = sorted({r["language"] for r in rows}, key=[r["language"] for r in rows].index)
    with figure(path, figsize=(8, 4)) as axis:
        width = 0.8 / len(METHODS)
        for k, name in enumerate(METHODS):
            values = [next(r for r in rows if r["language"] == lang and r["method"] == name)
                      for lang in languages]
            axis.bar([i + k * width for i in range(len(languages))],
                     [v["agree (same count, identical ids)"] for v in values], width, label=name)
        axis.set_xticks([i + width * (len(METHODS) - 1) / 2 for i in range(len(languages))], languages)
        axis.set_ylabel("texts agreeing with piper-tts (of 50)")
        axis.set_ylim(0, 1.25 * max(len(TEXTS[lang]) for lang in languages))
        axis.legend(loc="upper center", ncol=len(METHODS), fontsize="small")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", nargs="+", default=list(TEXTS), choices=list(TEXTS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 where the shipped frontend splits like piper-tts but its ids differ")
    args = parser.parse_args()
    results = [measure(language) for language in args.languages]
    rows = [row for result in results for row in summary(result)]
    versions = {package: importlib.metadata.version(package) for package in ("pysbd", "piper-tts")}
    info = machine_info()
    print(f"machine: {info['summary']}; " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "\n")
    print(markdown_table(rows))
    for result in results:
        print(disagreements(result))
    save(args.out, "sentence_rules", {"machine": info, "versions": versions, "rows": rows, "results": results},
         lambda path: plot(rows, path))
    broken = sum(r["same count, ids differ"] for r in rows if r["method"] == SHIPPED)
    if broken:
        print(f"\nWARNING: {broken} texts where the shipped frontend splits like piper-tts but its ids differ",
              file=sys.stderr)
        if args.strict:
            sys.exit(1)


if __name__ == "__main__":
    main()
