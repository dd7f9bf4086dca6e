"""English normalization tables: units, abbreviations, acronyms, months, symbols (data, no logic)."""

from __future__ import annotations


def _units(table: str) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for line in table.strip().splitlines():
        written, singular, plural = (part.strip() for part in line.split("|"))
        for form in written.split():
            out[form] = (singular, plural)
    return out


# written forms (space-separated) | singular | plural.  A spoken form starting with "=" is spelled
# letter by letter ("=psi" → p s i).  Keys are case-sensitive: "mm" is not "Mm".
UNITS = _units(
    """
    km kms                 | kilometer             | kilometers
    m                      | meter                 | meters
    cm                     | centimeter            | centimeters
    mm                     | millimeter            | millimeters
    mi                     | mile                  | miles
    ft                     | foot                  | feet
    in                     | inch                  | inches
    yd yds                 | yard                  | yards
    km/h kmh kph km/hr     | kilometer per hour    | kilometers per hour
    mph                    | mile per hour         | miles per hour
    m/s                    | meter per second      | meters per second
    °C ºC ℃ °c             | degree celsius        | degrees celsius
    °F ºF ℉ °f             | degree fahrenheit     | degrees fahrenheit
    ° º                    | degree                | degrees
    psi                    | =psi                  | =psi
    bar                    | bar                   | bar
    kPa                    | kilopascal            | kilopascals
    hPa                    | hectopascal           | hectopascals
    W                      | watt                  | watts
    kW                     | kilowatt              | kilowatts
    MW                     | megawatt              | megawatts
    Wh                     | watt hour             | watt hours
    kWh                    | kilowatt hour         | kilowatt hours
    V                      | volt                  | volts
    mV                     | millivolt             | millivolts
    kV                     | kilovolt              | kilovolts
    A                      | amp                   | amps
    mA                     | milliamp              | milliamps
    mAh                    | milliamp hour         | milliamp hours
    Ah                     | amp hour              | amp hours
    Ω                      | ohm                   | ohms
    Hz                     | hertz                 | hertz
    kHz                    | kilohertz             | kilohertz
    MHz                    | megahertz             | megahertz
    GHz                    | gigahertz             | gigahertz
    kg kgs                 | kilogram              | kilograms
    g                      | gram                  | grams
    mg                     | milligram             | milligrams
    lb lbs                 | pound                 | pounds
    oz                     | ounce                 | ounces
    L l ltr                | liter                 | liters
    ml mL                  | milliliter            | milliliters
    cl cL                  | centiliter            | centiliters
    dl dL                  | deciliter             | deciliters
    gal                    | gallon                | gallons
    mpg                    | mile per gallon       | miles per gallon
    kB KB                  | kilobyte              | kilobytes
    MB                     | megabyte              | megabytes
    GB                     | gigabyte              | gigabytes
    TB                     | terabyte              | terabytes
    kbps kb/s              | kilobit per second    | kilobits per second
    Mbps Mb/s              | megabit per second    | megabits per second
    Gbps Gb/s              | gigabit per second    | gigabits per second
    ms                     | millisecond           | milliseconds
    s sec secs             | second                | seconds
    min mins               | minute                | minutes
    h hr hrs               | hour                  | hours
    rpm RPM                | =rpm                  | =rpm
    dB                     | decibel               | decibels
    hp                     | horsepower            | horsepower
    Nm                     | newton meter          | newton meters
    cc                     | =cc                   | =cc
    %                      | percent               | percent
    """
)

ATTACHED_ONLY_WITH_SPACE = frozenset({"A", "in"})
"""Units too ambiguous glued to a number ("12A" is an exit, "5in" a typo): read only when apart."""

AMBIGUOUS_SEPARATE = frozenset({"in"})
"""Units read as units after a number only before punctuation, the end, or a measuring word."""

INCH_CONTEXT = frozenset(
    "long wide tall high deep thick screen display diameter pipe wheel wheels rims tires tyres".split()
)

CURRENCY = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "US$": ("dollar", "dollars", "cent", "cents"),
    "USD": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "EUR": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "GBP": ("pound", "pounds", "penny", "pence"),
    "¥": ("yen", "yen", "", ""),
    "JPY": ("yen", "yen", "", ""),
    "₹": ("rupee", "rupees", "paisa", "paise"),
    "INR": ("rupee", "rupees", "paisa", "paise"),
}
"""Symbol or code → (major singular, major plural, minor singular, minor plural)."""

SCALE_WORDS = {
    "thousand": "thousand",
    "million": "million",
    "billion": "billion",
    "trillion": "trillion",
    "k": "thousand",
    "K": "thousand",
    "m": "million",
    "M": "million",
    "mn": "million",
    "b": "billion",
    "B": "billion",
    "bn": "billion",
    "tn": "trillion",
    "T": "trillion",
}
"""Scale suffixes after a currency amount: "$2.5M" → two point five million dollars."""

BARE_SCALES = {"k": "thousand", "M": "million", "bn": "billion"}
"""Scale suffixes glued to a bare number ("10k", "2.5M"); "4K" stays a letter."""

MONTHS = (
    "january february march april may june july august september october november december"
).split()
MONTH_OF = {name.capitalize(): i + 1 for i, name in enumerate(MONTHS)}
MONTH_OF.update({name.upper(): i + 1 for i, name in enumerate(MONTHS)})
MONTH_ABBR = {
    "Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "Jun": 6, "Jul": 7, "Aug": 8,
    "Sep": 9, "Sept": 9, "Oct": 10, "Nov": 11, "Dec": 12,
}  # fmt: skip
"""Month abbreviations; read as months only before a day or a year."""

ORDINAL_SUFFIXES = frozenset({"st", "nd", "rd", "th", "ST", "ND", "RD", "TH"})

# Abbreviations: written form without its final period → (spoken, period, role).
#   period: "required" (only with a period), "optional".
#   role:   "before" comes before what it qualifies (Mr. Smith, No. 7): its period never ends a sentence;
#           "after" comes after (Main St., Smith Jr., etc.): its period ends the sentence when the text
#           ends there or a capitalized word follows.
ABBREVIATIONS: dict[str, tuple[str, str, str]] = {
    "Mr": ("mister", "optional", "before"),
    "Mrs": ("missus", "optional", "before"),
    "Ms": ("miz", "optional", "before"),
    "Prof": ("professor", "required", "before"),
    "Capt": ("captain", "required", "before"),
    "Sgt": ("sergeant", "required", "before"),
    "Lt": ("lieutenant", "required", "before"),
    "Gov": ("governor", "required", "before"),
    "Mt": ("mount", "optional", "before"),
    "Ft": ("fort", "required", "before"),
    "Jr": ("junior", "optional", "after"),
    "Sr": ("senior", "optional", "after"),
    "Ave": ("avenue", "optional", "after"),
    "Av": ("avenue", "required", "after"),
    "Blvd": ("boulevard", "optional", "after"),
    "Rd": ("road", "optional", "after"),
    "Ln": ("lane", "optional", "after"),
    "Hwy": ("highway", "optional", "after"),
    "Fwy": ("freeway", "optional", "after"),
    "Pkwy": ("parkway", "optional", "after"),
    "Expy": ("expressway", "optional", "after"),
    "Ct": ("court", "optional", "after"),
    "Pl": ("place", "required", "after"),
    "Sq": ("square", "optional", "after"),
    "Cir": ("circle", "optional", "after"),
    "Ter": ("terrace", "required", "after"),
    "Tpke": ("turnpike", "optional", "after"),
    "Apt": ("apartment", "optional", "before"),
    "Ste": ("suite", "required", "before"),
    "Dept": ("department", "optional", "after"),
    "Inc": ("incorporated", "optional", "after"),
    "Ltd": ("limited", "optional", "after"),
    "Corp": ("corporation", "optional", "after"),
    "Bros": ("brothers", "required", "after"),
    "etc": ("et cetera", "optional", "after"),
    "vs": ("versus", "optional", "before"),
    "e.g": ("for example", "optional", "before"),
    "i.e": ("that is", "optional", "before"),
    "approx": ("approximately", "optional", "before"),
    "Approx": ("approximately", "optional", "before"),
    "est": ("estimated", "required", "before"),
    "Est": ("estimated", "required", "before"),
    "max": ("maximum", "required", "before"),
    "Max": ("maximum", "required", "before"),
    "min": ("minimum", "required", "before"),
    "Min": ("minimum", "required", "before"),
    "Fig": ("figure", "required", "before"),
    "fig": ("figure", "required", "before"),
    "Vol": ("volume", "required", "before"),
    "vol": ("volume", "required", "before"),
    "Ch": ("chapter", "required", "before"),
    "Tel": ("telephone", "required", "before"),
    "tel": ("telephone", "required", "before"),
    "Ext": ("extension", "required", "before"),
    "ext": ("extension", "required", "before"),
    "Nos": ("numbers", "required", "before"),
    "nos": ("numbers", "required", "before"),
    "Mon": ("monday", "required", "before"),
    "Tue": ("tuesday", "required", "before"),
    "Tues": ("tuesday", "required", "before"),
    "Wed": ("wednesday", "required", "before"),
    "Thu": ("thursday", "required", "before"),
    "Thur": ("thursday", "required", "before"),
    "Thurs": ("thursday", "required", "before"),
    "Fri": ("friday", "required", "before"),
}
ABBREVIATIONS.update({abbr: (MONTHS[month - 1], "required", "before") for abbr, month in MONTH_ABBR.items()})

STREET_SUFFIXES = frozenset(
    "St Ave Av Blvd Rd Ln Hwy Fwy Pkwy Expy Ct Pl Sq Cir Ter Tpke Dr Street Avenue Boulevard Road "
    "Lane Drive Court Place Way Highway Freeway Parkway Square Circle Terrace".split()
)
"""Words that end a street name; a period before one of them does not end a sentence."""

DIRECTIONS = {
    "N": "north", "S": "south", "E": "east", "W": "west",
    "NE": "northeast", "NW": "northwest", "SE": "southeast", "SW": "southwest",
    "NB": "northbound", "SB": "southbound", "EB": "eastbound", "WB": "westbound",
}  # fmt: skip

ROAD_PREFIXES = {
    "I": ("=i",),
    "US": ("=us",),
    "SR": ("=sr",),
    "CR": ("=cr",),
    "FM": ("=fm",),
    "Hwy": ("highway",),
    "HWY": ("highway",),
    "Highway": ("highway",),
    "Rte": ("route",),
    "Route": ("route",),
    "Interstate": ("interstate",),
}
"""Written road prefixes → spoken words ("=" spells): "I-95", "US 101", "Hwy 1", "SR-9"."""

ROMAN_KEYWORDS = frozenset(
    "chapter part volume vol book act scene war phase level stage section article episode season bowl "
    "type class grade mark mk series round generation gen tier step appendix unit league division "
    "olympiad edition psalm canto stanza plate figure table vatican apollo".split()
)
"""A Roman numeral after one of these is read as a cardinal: "Chapter IV" → chapter four."""

REGNAL_NAMES = frozenset(
    "Henry Louis Charles George Edward Elizabeth William James Richard John Mary Anne Victoria Philip "
    "Frederick Peter Catherine Alexander Nicholas Ivan Pius Leo Gregory Benedict Clement Innocent Paul "
    "Urban Boniface Alfonso Ferdinand Isabella Gustav Napoleon Otto Ludwig Friedrich Wilhelm Rudolf "
    "Constantine Ramses Ptolemy Sancho Juan Carlos Felipe Harald Olaf Christian Magnus Haakon Erik "
    "Sigismund Casimir Stephen David Robert Malcolm Duncan Kenneth Alexander Edmund Harold".split()
)
"""Names after which a Roman numeral is a regnal ordinal: "Henry VIII" → henry the eighth."""

SPOKEN_ACRONYMS = frozenset(
    "NASA NATO SIM PIN GIF SCUBA RADAR LASER LIDAR SONAR UNESCO UNICEF FIFA OPEC IKEA AIDS NAFTA "
    "ASCII CAPTCHA DAB WAN LAN RAM ROM NOAA FEMA OSHA INTERPOL POTUS PIN SWAT ZIP TASER YOLO "
    "AWOL NIMBY ECO AUTO COVID".split()
)
"""All-caps forms read as words rather than letters."""

CAPS_WORDS = frozenset(
    """ON OFF NO GO UP HI MAX MIN STOP START HIGH LOW MED MEDIUM COOL HEAT FAN DRY MIX WASH RINSE SPIN
    HOT COLD WARM OPEN CLOSE CLOSED LOCK LOCKED DOOR FUEL OIL BRAKE MENU HOME BACK NEXT PLAY PAUSE MUTE
    TIMER MODE SET RESET HOLD CHECK ALERT ERROR FULL EMPTY READY DONE WAIT PUSH PULL TURN LEFT RIGHT
    SLOW FAST NEW YES NOT AND THE FOR YOU ALL NOW LIVE SALE FREE EXIT ENTER HELP INFO NOTE TIP TIPS
    WARNING CAUTION DANGER NOTICE ONLY AREA ZONE PARK DRIVE SPORT SNOW RAIN ICE AIR FRESH QUICK DELAY
    CLEAN STEAM BAKE GRILL ROAST DEFROST KEEP FILL DRAIN EASY HEAVY LIGHT SOFT FROST BOOST POWER
    TEMP SAVE LOAD FILTER SMART PLUS BUS STAR CALL SEND END TEST""".split()
)
"""All-caps words of displays and signs read as words ("Press STOP"), not spelled."""

KNOWN_SPELLED = frozenset(
    """USB GPS ETA LED LCD TV SUV ABS ESP EV HVAC AC DC FM AM PM ID OK USA UK EU BMW CD DVD PC
    HDMI SD AI IT HR PDF URL ATM VIN RPM PSI TPMS ADAS ACC ECU OBD CPU GPU API FAQ ASAP DIY
    BBC CNN FBI CIA NYC LA SF DNA RSVP""".split()
)
"""Acronyms spelled even in all-caps text, where other all-caps words are read as words."""

LETTER_FOLD = str.maketrans(
    {
        "ß": "ss", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ø": "o", "Ø": "o", "ł": "l", "Ł": "l",
        "đ": "d", "Đ": "d", "ð": "d", "Ð": "d", "þ": "th", "Þ": "th", "ı": "i", "ſ": "s", "’": "'",
        "ʼ": "'", "‘": "'",
    }
)  # fmt: skip
"""Latin letters that Unicode decomposition does not reduce to ASCII."""

SYMBOLS = {
    "&": ("and",),
    "+": ("plus",),
    "=": ("equals",),
    "@": ("at",),
    "×": ("times",),
    "÷": ("divided", "by"),
    "±": ("plus", "or", "minus"),
    "%": ("percent",),
    "‰": ("per", "mille"),
    "°": ("degrees",),
    "<": ("less", "than"),
    ">": ("greater", "than"),
    "≤": ("at", "most"),
    "≥": ("at", "least"),
    "≈": ("approximately",),
    "§": ("section",),
    "©": ("copyright",),
    "€": ("euros",),
    "$": ("dollars",),
    "£": ("pounds",),
    "¥": ("yen",),
    "Ω": ("ohms",),
    "½": ("one", "half"),
    "⅓": ("one", "third"),
    "⅔": ("two", "thirds"),
    "¼": ("one", "quarter"),
    "¾": ("three", "quarters"),
    "⅛": ("one", "eighth"),
}
"""Symbols that have a spoken form when they stand alone; everything else unlisted is dropped."""

CLAUSE_MARKS = frozenset(",;:()[]{}—–|•·")
SENTENCE_MARKS = {".": ".", "?": "?", "!": "!", "…": ".", "؟": "?", "。": ".", "！": "!", "？": "?"}

TLDS = frozenset(
    """com org net edu gov mil int io co uk de fr es nl ch se dk fi pl cz ru cn jp kr au
    nz ca eu info biz app dev ai tv ly gl fm""".split()
)
"""Top-level domains that make "name.tld" a web address."""

URL_WORDS = {"com": ("com",), "org": ("org",), "net": ("net",), "gov": ("gov",), "info": ("info",),
             "app": ("app",), "dev": ("dev",)}  # fmt: skip
"""Address parts read as words although short."""

URL_SYMBOLS = {
    ".": ("dot",),
    "/": ("slash",),
    "@": ("at",),
    "-": ("dash",),
    "_": ("underscore",),
    ":": ("colon",),
    "?": ("question", "mark"),
    "=": ("equals",),
    "&": ("and",),
    "#": ("hash",),
    "~": ("tilde",),
    "+": ("plus",),
    "%": ("percent",),
}

DECADE_LEAD_WORDS = frozenset("the early late mid his her their our my your its".split())
"""Words before a bare "90s" that make it a decade rather than ninety seconds."""

ARTICLES = frozenset({"a", "an", "A", "An"})
"""Before a measured number, the unit is an adjective and stays singular: "a 12 V battery"."""

EMERGENCY_NUMBERS = frozenset({"911", "112"})
"""Read digit by digit: "call 911" → nine one one."""

AMPM = {
    "am": "am", "AM": "am", "a.m": "am", "A.M": "am", "Am": "am",
    "pm": "pm", "PM": "pm", "p.m": "pm", "P.M": "pm", "Pm": "pm",
}  # fmt: skip
