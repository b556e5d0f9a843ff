"""Is a query English? A small offline heuristic, tuned for short search queries.

The models were evaluated in English, so a query in another language gets a notice. Evidence for
another language: letters from a non-Latin script, function words of other European languages
(that are not also English words), and letters English does not use (ß, ñ, ø, å, ł, ...). English
evidence: English function words and common English words. With no evidence either way (a
name, a rare word) the query is taken as English: a notice should be right when it appears.
"""

from __future__ import annotations

import re
import unicodedata


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


NOTICE = (
    "This query does not look like English. The model was evaluated in English only; results for "
    "other languages are untested and may be poor or skewed. Try the query in English as well."
)

ENGLISH = _words(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most
    my myself no nor not now of off on once only or other our ours out over own same she should so some
    such than that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you your
    yours upon among along across around behind beside beyond near without within toward towards
    picture pictures image images photo drawing drawings illustration illustrations engraving print
    portrait map maps old new man men woman women child children boy girl people house houses city
    town street church castle ship ships boat sea river mountain tree trees flower flowers bird birds
    dog dogs cat cats horse horses animal animals fish book books king queen war soldier soldiers
    red blue green yellow black white small large big little great view plate plates figure figures
    head face hand hands water fire sky sun moon star night day garden field forest bridge road
    sailing sailor ship's one two three four five many"""
)

# Function words of other languages (and the words for common picture subjects), minus words that
# are also English (e.g. "die", "on", "a"); the subject words avoid English look-alikes (chat, kind).
_FOREIGN_WORDS: dict[str, frozenset[str]] = {
    "fr": _words(
        """le la les un une des du de et est dans pour sur avec sans par pas qui que quoi dont ou où
        mais donc ni car ce cette ces mon ma mes ton ta tes son sa ses notre nos votre vos leur leurs
        je tu il elle nous vous ils elles au aux été être avoir très chez entre vers sous
        chien chiens cheval chevaux oiseau oiseaux maison église château femme homme enfant fleur
        fleurs arbre navire bateau carte ville paysage roi reine soldat guerre noir noire blanc
        blanche rouge jaune vert verte bleu"""
    ),
    "de": _words(
        """der die das den dem des ein eine einer eines einem einen und ist nicht mit von zu zum zur
        im auf für ohne aus bei nach über unter vor zwischen ich du er sie es wir ihr mein dein sein
        unser euer auch noch schon sehr oder aber wie wo was wer warum dass ob weil
        katze katzen hund hunde pferd pferde vogel haus kirche schloss frau mann kinder blume blumen
        baum schiff karte stadt landschaft könig königin soldat krieg schwarz weiß weiss rot gelb
        grün blau"""
    ),
    "es": _words(
        """el la los las un una unos unas y es en con sin por para del al que como pero muy más su sus
        mi mis tu tus yo él ella nosotros ellos ellas este esta estos estas ese esa hay entre sobre
        bajo desde hasta
        gato gatos perro perros caballo caballos pájaro casa iglesia castillo mujer hombre niño flor
        flores árbol barco mapa ciudad paisaje rey reina soldado guerra negro blanco rojo amarillo
        verde azul"""
    ),
    "it": _words(
        """il lo la gli le un uno una e è di da in con su per tra fra del della dei degli delle al alla
        ai agli alle nel nella nei che non ma come più molto mio mia tuo tua suo sua questo questa
        quello quella sono
        gatto gatti cane cani cavallo cavalli uccello uccelli chiesa castello donna uomo bambino
        fiore fiori albero nave mappa città paesaggio regina soldato guerra nero bianco rosso
        giallo"""
    ),
    "pt": _words(
        """o a os as um uma uns umas e é de do da dos das em no na nos nas com sem por para que não mas
        como muito seu sua meu minha ele ela eles elas este esta isso
        cachorro cavalo pássaro igreja castelo mulher homem criança árvore navio cidade rainha
        preto branco vermelho amarelo"""
    ),
    "nl": _words(
        """de het een en is van in op met voor niet aan bij uit naar door over onder tussen ik jij hij
        zij wij jullie mijn zijn haar ons deze dit die dat ook maar wat waar hoe
        kat hond paard vogel huis kerk kasteel vrouw kinderen bloem boom schip kaart stad koning
        koningin oorlog zwart wit rood geel groen blauw"""
    ),
    "la": _words("""et est in cum ad per sub non sed qui quae quod ex ab de inter atque"""),
    "sv": _words("""och är en ett det den att som för med av på till från inte jag du han hon vi"""),
}
# Drop foreign words that are also English words, so "a", "die", "on", "in" count for nobody.
FOREIGN = {lang: frozenset(words - ENGLISH) for lang, words in _FOREIGN_WORDS.items()}
# Particles inside personal and place names ("Leonardo da Vinci", "Tour de France") are no evidence.
_NAME_PARTICLES = _words("de da di del della van von der den la le du des dos das y e")

# Latin letters with diacritics that English words practically never carry (café and naïve do).
_FOREIGN_LETTERS = set("ßñøåæœłąęśźżčřšžůőűğışãõâêîôûàèìòùäöüÿçáíóúý")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)


def _script(ch: str) -> str:
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return "other"
    return "latin" if name.startswith("LATIN") else name.split(" ", 1)[0].lower()


def guess_is_english(text: str) -> bool:
    """True unless the text shows evidence of being in another language."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return True
    latin = sum(1 for c in letters if _script(c) == "latin")
    if latin / len(letters) < 0.5:
        return False
    tokens = _WORD.findall(text)
    if not tokens:
        return True
    words = [
        w.casefold()
        for i, w in enumerate(tokens)
        if not (
            w.casefold() in _NAME_PARTICLES
            and 0 < i < len(tokens) - 1
            and tokens[i - 1][:1].isupper()
            and tokens[i + 1][:1].isupper()
        )
    ]
    english = sum(1 for w in words if w in ENGLISH)
    foreign = max(sum(1 for w in words if w in fw) for fw in FOREIGN.values())
    # Capitalised words with such letters are mostly names (Zürich, São Paulo): no evidence.
    marked = sum(1 for w in tokens if w[:1].islower() and set(w.lower()) & _FOREIGN_LETTERS)
    if foreign == 0 and marked == 0:
        return True
    return english >= foreign + marked


def covered_notice(text_model: str, languages: list[str]) -> str:
    """The notice when queries are embedded by a multilingual text model: the languages it covers."""
    listed = ", ".join(languages) if languages else "languages its card does not list"
    return (
        f"This query does not look like English. Text queries are embedded with {text_model}, trained for "
        f"{len(languages) or 'several'} languages ({listed}); results in other languages may be poorer than in English."
    )


def language_notice(text: str, text_model: tuple[str, list[str]] | None = None) -> str | None:
    """The notice to show for ``text``, or None when it looks English. ``text_model``: the name and
    languages of a multilingual text model embedding the queries (then it names those languages)."""
    if guess_is_english(text):
        return None
    return NOTICE if text_model is None else covered_notice(*text_model)
