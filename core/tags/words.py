"""The curated data behind `core.tags.vocabulary`: hand-written, small, and checked by a test
against HetRec's 200 most used Last.fm tags (tests/tags/test_vocabulary.py).

Add a tag here when logs or a user show a good genre hidden or a junk word shown; the rules in
`vocabulary.classify` cover the long tail.
"""

from __future__ import annotations


def _bar(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split("|") if t.strip())


#: Tags by class, as Last.fm listeners spell them (any spelling: they are keyed by `tag_key`).
CURATED_BY_CLASS: dict[str, tuple[str, ...]] = {
    "genre": _bar("""
        rock | pop | alternative | electronic | indie | dance | alternative rock | classic rock |
        indie rock | singer-songwriter | hard rock | experimental | metal | ambient | new wave |
        chillout | hip-hop | punk | folk | electronica | rnb | instrumental | heavy metal | soul |
        acoustic | progressive rock | jazz | soundtrack | industrial | trip-hop | metalcore | rap |
        synthpop | hardcore | indie pop | pop rock | britpop | post-punk | punk rock | blues |
        psychedelic | downtempo | thrash metal | idm | post-rock | electro | death metal |
        post-hardcore | pop punk | country | ebm | progressive metal | emo | screamo | trance | funk |
        classical | nu metal | melodic death metal | gothic | grunge | house | power metal | techno |
        deathcore | latin | shoegaze | reggae | black metal | gothic metal | electropop | world |
        blues rock | mpb | minimal | lounge | progressive | darkwave | disco | new age |
        symphonic metal | avant-garde | dream pop | lo-fi | psychedelic rock | noise | j-pop |
        alternative metal | industrial metal | christian | soft rock | ska | rock n roll | urban |
        j-rock | grindcore | garage rock | dark electro | christian rock | futurepop | gothic rock |
        doom metal | hair metal | glam rock | powerpop | dark ambient | emocore | mathcore |
        electroclash | speed metal | dub | easy listening | bossa nova | psytrance |
        brutal death metal | southern rock | k-pop | drum and bass | dubstep | krautrock |
        post-metal | math rock | neo-soul | chillwave | vaporwave | synthwave | hyperpop | r&b |
        folk rock | indie folk | americana | bluegrass | gospel | opera | baroque | orchestral |
        stoner rock | sludge metal | noise rock | slowcore | coldwave | breakbeat | jungle | grime |
        trap | drill | dancehall | afrobeat | reggaeton | salsa | samba | flamenco | chanson |
        big beat | glitch | rockabilly | surf rock | swing | bebop | fusion | jazz fusion |
        smooth jazz | acid jazz | funk rock | rap rock | art rock | art pop | chamber pop |
        baroque pop | sophisti-pop | city pop | cumbia | tango | fado | celtic | folk metal |
        viking metal | pagan metal | stoner metal | sludge | shoegazer | witch house | new rave |
        uk garage | 2-step | footwork | deep house | tech house | progressive house | acid house |
        electro house | minimal techno | hardstyle | gabber | industrial rock | neue deutsche harte |
        riot grrrl | no wave | grunge rock | musical | cabaret | bossanova | tropicalia | axe |
        """),
    "mood": _bar("""
        mellow | sad | melancholic | dreamy | atmospheric | happy | romantic | ethereal | chill |
        relax | relaxing | party | melancholy | calm | energetic | upbeat | uplifting | dark |
        aggressive | angry | peaceful | soothing | haunting | moody | nostalgic | hypnotic | trippy |
        groovy | bittersweet | introspective | sensual | playful | intense | lush | warm | raw |
        """),
    "scene": _bar("""
        new romantic | madchester | nwobhm | canterbury scene | c86 | motown | northern soul |
        bay area thrash | visual kei | grebo | baggy | mod | rave | twee | oldschool | old school |
        """),
    "era": _bar("""
        80s | 90s | 70s | 00s | 60s | 50s | 40s | 10s | 20s | oldies |
        """),
    "place": _bar("""
        british | american | brazilian | german | canadian | uk | french | japanese | usa | brasil |
        swedish | english | spanish | russian | polish | brazil | italian | icelandic | australian |
        finnish | norwegian | danish | dutch | belgian | irish | scottish | welsh | korean | chinese |
        mexican | argentinian | portuguese | greek | turkish | austrian | swiss | jamaican | african |
        scandinavian | nordic | deutsch | new york | french pop | britannia |
        """),
    "personal": _bar("""
        seen live | favorites | favorite | favourites | favourite | favorite songs | my top |
        love at first listen | love it | love | <3 | guilty pleasures | guilty pleasure |
        albums i own | love songs | 2008 | favorite artists | favourite artists | check out |
        to check out | my favorites | my favourite | under 2000 listeners |
        """),
    "judgement": _bar("""
        beautiful | sexy | awesome | amazing | cool | catchy | fun | epic | legend | sweet | hot |
        perfect | fucking awesome | cute | diva | classic | genius | brilliant | masterpiece |
        best | great | good | overrated | underrated | boring | weird | crap | shit |
        """),
    "meta": _bar("""
        female vocalists | male vocalists | female vocalist | male vocalist | female | male |
        cover | covers | remix | piano | guitar | ballad | christmas | disney | vocal | vocals |
        female vocals | male vocals | live | demo |
        """),
}

#: Keys merged as one tag (after spaces and hyphens are dropped): true synonyms only.
KEY_ALIASES: dict[str, str] = {
    "randb": "rnb",
    "rhythmandblues": "rnb",
    "femalevocalist": "femalevocalists",
    "malevocalist": "malevocalists",
    "brasil": "brazil",
    "rockandroll": "rockandroll",
    "shoegazer": "shoegaze",
    "bossanova": "bossanova",
    "relax": "relaxing",
    "melancholy": "melancholic",
    "oldschool": "oldschool",
    "triphop": "triphop",
    "electronika": "electronica",
    "soundtracks": "soundtrack",
}

#: How a tag is written when shown, by key (Last.fm's most used spelling, or the conventional one).
PREFERRED: dict[str, str] = {
    "synthpop": "synthpop",
    "hiphop": "hip-hop",
    "triphop": "trip-hop",
    "postrock": "post-rock",
    "postpunk": "post-punk",
    "postmetal": "post-metal",
    "posthardcore": "post-hardcore",
    "lofi": "lo-fi",
    "rnb": "r&b",
    "dreampop": "dream pop",
    "indiepop": "indie pop",
    "indierock": "indie rock",
    "newwave": "new wave",
    "rockandroll": "rock and roll",
    "drumandbass": "drum and bass",
    "neosoul": "neo-soul",
    "jpop": "j-pop",
    "jrock": "j-rock",
    "kpop": "k-pop",
    "numetal": "nu metal",
    "singersongwriter": "singer-songwriter",
    "avantgarde": "avant-garde",
    "electropop": "electropop",
    "powerpop": "power pop",
    "poppunk": "pop punk",
    "bossanova": "bossa nova",
    "brazil": "brazilian",
    "relaxing": "relaxing",
    "melancholic": "melancholic",
    "oldschool": "old school",
    "mathrock": "math rock",
    "citypop": "city pop",
    "2step": "2-step",
}

#: Words that make any tag personal: it says something about the tagger, not the music.
PERSONAL_WORDS: frozenset[str] = frozenset("""
    favorite favorites favourite favourites fav favs faves my mine i me own owned seen loved
    lovely <3 wishlist listened heard bought vinyl collection spotify check
""".split())

#: Phrases that make a tag personal wherever they appear.
PERSONAL_PHRASES: tuple[str, ...] = (
    "seen live", "to listen", "love it", "love at first", "guilty pleasure", "under 2000",
    "my top", "top 10", "top 100", "10 of 10", "5 stars", "stars", "best of", "albums i",
)

#: Words of praise or scorn: true for the tagger, not a description of the sound.
JUDGEMENT_WORDS: frozenset[str] = frozenset("""
    awesome amazing sexy beautiful cool catchy fun epic legend legendary sweet hot perfect cute
    diva genius brilliant masterpiece best great good overrated underrated boring weird crap shit
    fucking fuckin damn wtf lol omg love hate sucks badass gorgeous stunning incredible excellent
    fantastic wonderful nice pretty hottie cutie idol god goddess king queen
""".split())

#: True words that describe a recording, not a taste.
META_WORDS: frozenset[str] = frozenset("""
    vocalist vocalists vocals female male cover covers remix remixes piano guitar guitarist
    christmas disney live demo bootleg compilation single singles ep
""".split())

#: Words a genre name is built from (compounds of these are genres).
GENRE_WORDS: frozenset[str] = frozenset("""
    rock pop metal punk jazz blues folk soul funk disco house techno trance ambient wave core hop
    rap ska reggae dub step bass beat beats electro electronic electronica industrial gothic goth
    grunge emo screamo noise drone doom death black thrash speed power glam hair sludge stoner
    grind indie alternative alt progressive prog psychedelic psych experimental avant garde
    classical baroque opera country bluegrass americana gospel christian latin samba bossa nova
    tango salsa cumbia flamenco fado chanson mpb kraut shoegaze dream post neo nu new synth lo fi
    hip trip hard soft heavy melodic symphonic minimal deep tech acid garage surf rockabilly swing
    bebop fusion smooth free big band jungle breakbeat breaks drum and n dubstep grime trap drill
    dancehall afrobeat afrobeats world celtic medieval viking pagan chamber orchestral cinematic
    soundtrack singer songwriter acoustic instrumental cappella lounge chillout downtempo idm
    glitch future ebm aggrotech darkwave coldwave rnb r b urban contemporary easy listening age
    roots southern outlaw math dance club pop-rock art noise-rock underground
    garage-rock hip-hop trip-hop lo-fi post-rock post-punk symphonic-metal j k c
    brutal technical atmospheric epic-metal power-metal avantgarde chill vapor city
    music groove gangsta teen space college proto psychobilly francaise kei visual
    choral choir classic modern traditional tribal ethnic oriental arabic flamenco
""".split()) - JUDGEMENT_WORDS - {"epic"}

#: A word ending in one of these is a genre word ("metalcore", "chillwave", "darkstep").
GENRE_SUFFIXES: tuple[str, ...] = ("core", "wave", "step", "pop", "rock", "metal", "hop", "punk", "gaze",
                                   "tronica", "beat", "dance", "trance", "billy", "house", "techno", "jazz", "folk", "grass")

MOOD_WORDS: frozenset[str] = frozenset("""
    mellow sad melancholic melancholy dreamy atmospheric happy romantic ethereal chill relax
    relaxing calm energetic upbeat uplifting dark aggressive angry peaceful soothing haunting moody
    nostalgic hypnotic trippy groovy bittersweet introspective sensual playful intense lush warm
    raw quiet loud slow fast spacey spacy
""".split())

ERA_WORDS: frozenset[str] = frozenset("oldies old school".split())

PLACE_WORDS: frozenset[str] = frozenset("""
    american british english scottish irish welsh canadian australian german french italian
    spanish portuguese brazilian swedish norwegian finnish danish icelandic dutch belgian polish
    russian ukrainian czech hungarian greek turkish japanese korean chinese mexican argentinian
    argentine chilean colombian cuban jamaican african nigerian indian israeli austrian swiss
    scandinavian nordic uk usa brazil brasil france germany japan sweden finland norway iceland
    canada australia spain italy mexico russia poland korea ireland scotland london manchester
    seattle detroit chicago berlin bristol nyc york california texas latino deutsch
""".split())
