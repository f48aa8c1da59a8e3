"""Word lists used by the grounding check and the keyword feedback parser.

They are deliberately small and hand-written: the grounding check fails *safe* (an unknown
capitalised word rejects a model answer and the template is shown instead), so a missing common
word costs a little quality, never a wrong fact. Add words here when logs show good answers being
rejected for an innocent word ("ungrounded: name 'Dreamy'").
"""

from __future__ import annotations

#: Capitalised words that are not names: sentence starters, pronouns, connectives, calendar words,
#: the services we talk about. Compared case-insensitively.
COMMON_WORDS: frozenset[str] = frozenset(
    """
    a an the and or but nor so yet for of in on at to from by with without into onto over under
    about above after again against all also although always among another any anyone anything
    are as because been before being below between both bring can could did do does doing done
    down during each either enjoy even ever every everything expect few first for further get
    give go going good great had has have having he her here here's hers him his how however i i'd i'll
    i'm i've if is it it's its just keep know last later let let's like likely look looks loved
    made make many may maybe me might more most much must my near need new next no not nothing now
    of off often old on once one only other our out over own perfect plenty probably quite rather
    really right same see she should similar since some something soon still such sure take than
    that that's their them then there there's these they they'll they're thing things think this
    those though through thus time to together too try until up us very want was way we we're
    well were what what's when where whether which while who whom whose why will with within would
    yes yet you you'd you'll you're you've your yours yourself

    hey hi hello welcome congrats cheers happy fresh big small deep deeper early late loud quiet
    heavy soft warm bright dark dreamy moody slow fast classic modern new old top best
    fans critics listeners people users reviewers friends someone anyone everyone nobody
    start starting begin begins begin dive dig spin play press queue hit take taste tastes
    album albums artist artists track tracks song songs record records playlist playlists mix
    score scores rating ratings review reviews pick picks week weekly today tonight
    both neither together plus also overall expect meanwhile still tagged picked common ground
    overlap crowd favourite favourites favorite safe real widely loved only where because while
    shared sharing love loving adore perfect ideal imagine consider definitely check listen given
    based thanks seems sounds sound nice wow oh fun whether enjoying fan
    monday tuesday wednesday thursday friday saturday sunday weekend
    january february march april may june july august september october november december
    aoty sonance discord spotify last.fm lastfm album-of-the-year albumoftheyear ok okay
    must-hear must hear kindred spirits opposites
    """.split()
)

#: Words allowed in a playlist *name* beyond the evidence: names are creative by nature, so the
#: check accepts ordinary evocative words but still rejects an unknown proper name.
TITLE_WORDS: frozenset[str] = frozenset(
    """
    after afternoon air all alone ashes atlas autumn avenue awake back bedroom beyond blue blur
    bloom breaks breeze bright burn calm chapter chill city clouds coast cold collection colour
    color corner cuts dawn daydream daylight days deep detour dream dreams drift drifting drive
    dusk dust echo echoes edge electric embers escape essentials evening fade faded fever field
    fields fire flow fog for from frequencies fresh garden ghost glow gold golden gravity groove
    hazy haze heart heat high highway hour hours hymns in into island journey late light lights
    lines long loop lost loud low machine midnight mind mirror mist mix moon morning motion
    night nights noise north of on orbit orbiting parade paths pulse rain rainy rays revival
    rewind ride rising road room rotation rush salt sea season sessions shadows shore signals
    silver sky slow snow songs sound sounds south space spin spring static storm story summer
    sun sundays sunset sunrise tape tapes the through tides to tonight trip twilight under
    undertow velvet voyage waves weekend west wild winter with world years your you
    a and
    """.split()
)

#: Genre words checked even in lower case: a genre in a model answer must be in the evidence tags.
#: Ambiguous English words ("house", "soul", "country", "classical", "trap") are left out on purpose.
GENRES: frozenset[str] = frozenset(
    """
    metal metalcore deathcore grindcore hardcore punk post-punk emo screamo shoegaze dream-pop
    dreampop grunge jazz bebop blues funk disco techno trance dubstep drum-and-bass dnb jungle
    idm ambient drone synthwave synthpop synth-pop vaporwave hyperpop hip-hop hiphop rap reggae
    reggaeton ska dancehall afrobeat afrobeats k-pop j-pop city-pop bossa-nova samba salsa
    flamenco bluegrass americana folk indie-folk indie-rock indie-pop math-rock post-rock
    post-metal prog progressive krautrock psychedelic psych noise-rock noise slowcore sadcore
    emo-rap trip-hop lo-fi lofi chillwave electronica edm electro breakbeat garage-rock
    new-wave coldwave darkwave goth gothic industrial ebm rnb r&b neo-soul gospel opera
    baroque orchestral cinematic soundtrack singer-songwriter britpop madchester
    """.split()
)

#: Multi-word genre spellings normalised to the hyphenated forms above.
GENRE_ALIASES: dict[str, str] = {
    "dream pop": "dream-pop",
    "hip hop": "hip-hop",
    "drum and bass": "drum-and-bass",
    "drum n bass": "drum-and-bass",
    "post punk": "post-punk",
    "post rock": "post-rock",
    "post metal": "post-metal",
    "math rock": "math-rock",
    "indie rock": "indie-rock",
    "indie pop": "indie-pop",
    "indie folk": "indie-folk",
    "trip hop": "trip-hop",
    "lo fi": "lo-fi",
    "synth pop": "synth-pop",
    "new wave": "new-wave",
    "neo soul": "neo-soul",
    "city pop": "city-pop",
    "bossa nova": "bossa-nova",
    "noise rock": "noise-rock",
    "garage rock": "garage-rock",
    "k pop": "k-pop",
    "j pop": "j-pop",
}

#: Spelled-out decades the feedback parser understands.
DECADE_WORDS: dict[str, int] = {
    "fifties": 1950,
    "sixties": 1960,
    "seventies": 1970,
    "eighties": 1980,
    "nineties": 1990,
    "noughties": 2000,
    "aughts": 2000,
    "twenties": 2020,
}
