"""Keyword rules deriving a two-level category tree for Icecat products (which have none).

`TOP_RULES` are tried in order over the lower-cased title and product type; the first match
names the top category (a top may have several rules: specific ones early, broad ones late).
`SUBCATEGORIES` then picks the second level by the first matching pattern; with none, the
product type (when it names a kind of thing) is the second level, else the product sits in the
top category itself. Patterns are RE2 syntax.
"""

from __future__ import annotations

TOP_RULES: list[tuple[str, str]] = [
    # specific phrases that broad rules further down would misfile
    ("Monitors & Projectors", r"privacy filter|screen protector|anti-glare"),
    ("Networking", r"print server|jetdirect|marknet"),
    ("Racks & Mounts", r"rack (?:shelf|enclosure|cabinet|mount kit|rails?)|server cabinet|"
     r"netshelter|\binrow\b"),
    ("Components", r"motherboard|desktop board|server board|workstation board|chassis|"
     r"computer case|power supply unit"),
    ("Toys & Games", r"puzzle|\btoys?\b|\bdolls?\b|lego|\bgame\b|playset|figure|\bpups?\b|"
     r"annabell|sylvanian|aquabeads|playmobil|paw patrol|baby born|hatchimals|collegg|"
     r"kinetic sand|crayola"),
    ("Warranties & Services", r"warranty|care ?pack|on-site|pick-up|\bservice\b|\bsla\b"),
    ("Laptops & Tablets", r"notebook|laptop|chromebook|netbook|ultrabook|2-in-1|\btablet\b|"
     r"\bipad\b|handheld mobile computer|\bpda\b|mobile workstation|elitebook|thinkpad|probook|"
     r"latitude|inspiron|pavilion|aspire|vostro|ideapad|macbook"),
    ("Phones", r"smartphone|mobile phone|\bphone\b|telephone|\bdect\b|\bvoip\b|galaxy|"
     r"iphone|\bmoto\b|android|dual sim"),
    # broad rules
    ("Power & UPS", r"\bups\b|uninterruptible|battery|batteries|power adapter|charger|surge|"
     r"\bpdu\b|power (?:strip|distribution)|inverter|li-ion|\bmah\b"),
    ("Cables & Adapters", r"\bcable|\bcord\b|patch|\bcoax|gender changer|splitter|coupler|"
     r"\bhub\b|extender|\bdock|converter|adapter|rj female|genderchanger|connector"),
    ("Printers & Supplies", r"toner|\bink\b|cartridge|printer|print ?head|\bdrum\b|fuser|"
     r"ribbon|maintenance kit|\bpaper\b|\blabels?\b|imaging unit|\bmfp\b|laserjet|inkjet|"
     r"multifunction|\bfax\b|scanner|singlepack|multipack|\boriginal\b|developer|feeder|"
     r"duplex|finisher|\bfilm\b|\bmedia\b|\bpgi-|\bcli-|\bdpi\b|\bsheets\b|tractor|tray|"
     r"roller|textile|labelmanager"),
    ("Computers & Servers", r"\bpc\b(?:[^(]|$)|desktop|workstation|\bserver|all-in-one|"
     r"thin client|tower\b"),
    ("Storage & Media", r"\bhdd\b|\bssd\b|hard (?:disk )?drive|solid state|\bflash\b|"
     r"memory card|\bsd(?:hc|xc)?\b|\bdvd|\bcd-r|blu-ray|\bbd-r|\btape\b|\blto\b|\bnas\b|"
     r"storage|\bdrive\b|nvme|\bu\.2\b"),
    ("Components", r"processor|\bcpu\b|\bmemory\b|\bram\b|\bddr|dimm|graphics card|video card|"
     r"\bgpu\b|\bfan\b|cooler|heat ?sink|thermal compound|power supply|\bpsu\b|raid|"
     r"controller|interface card|\bnic\b|\bpcie?\b|pci express|adapter card|plug-in card|"
     r"geforce|radeon|quadro|\bi/f board|slot expander"),
    ("Networking", r"switch|router|access point|network|ethernet|wireless lan|\bwlan\b|wi-fi|"
     r"media converter|transceiver|\bsfp|powerline|modem|\bkvm\b|firewall|\bpoe\b|gateway|"
     r"antenna|faceplate|wall plate|outlet|punch ?down|keystone|modular|patch panel"),
    ("Cameras", r"camera|camcorder|webcam|\blens\b|tripod|\bd?slr\b|binocular|\bef-s?\b"),
    ("Monitors & Projectors", r"monitor|projector|projection|\bdisplay\b|\blcd\b|\btv\b|"
     r"television|\bscreen\b|lamp\b|\bpixels\b|photo ?frame"),
    ("Audio & Video", r"\bav\b|media ?player|mediasmart|headphone|headset|earphone|earbud|"
     r"speaker|microphone|soundbar|\baudio\b|\bmp[34]\b|hi-fi|micro system|\bradio\b|"
     r"amplifier"),
    ("Input Devices", r"keyboard|\bmouse\b|\bmice\b|trackball|presenter|graphic tablet|"
     r"barcode|\bpos\b"),
    ("Racks & Mounts", r"\brack\b|mount|\bshelf\b|bracket|enclosure|cabinet|cpu holder|"
     r"\bstand\b|bezel|panel|caster|ceiling|\broof\b|\bpipe\b|holder"),
    ("Office Supplies", r"calculator|laminat|shredder|stapler|binder|envelope|whiteboard|"
     r"\bpen\b|folder|organizer|self-adhesive|pockets|sheet protector|\bindex\b|\btabs\b|"
     r"marker|lever arch|\bfile\b"),
    ("Home Appliances", r"coffee|espresso|kettle|vacuum|\biron\b|toaster|blender|shaver|"
     r"trimmer|hair dryer|fridge|refrigerat|oven|microwave|cooker|radiator|heater|\bhob\b|"
     r"cooktop|dishwasher|washing machine|built-in|razor|front-load|cool box|washer|dryer"),
    ("Bags & Cases", r"\bbag\b|backpack|\bcase\b|sleeve|briefcase|\bpouch\b|trolley"),
    ("Software", r"software|licen[cs]e|\bupgrade\b|subscription"),
    ("Accessories", r"clean|\bcover\b|holder|stylus|strap|\bkit\b|skin|protector"),
]
FALLBACK = "Other Electronics"

SUBCATEGORIES: dict[str, list[tuple[str, str]]] = {
    "Power & UPS": [
        ("UPS", r"\bups\b|uninterruptible"), ("Batteries", r"batter"),
        ("Chargers & Adapters", r"charger|adapter|inverter"),
        ("Power Distribution", r"pdu|surge|strip|distribution"),
    ],
    "Cables & Adapters": [
        ("Adapters & Hubs", r"coupler|\bhub\b|extender|\bdock|converter|gender changer|"
                            r"adapter|splitter|rj female|connector"),
        ("Network Cables", r"cat ?[5-8]|rj-?45|utp|stp|ethernet|patch"),
        ("Fiber Optic Cables", r"fib(?:er|re)|\blc\b|\bsc\b|multimode|single-?mode"),
        ("Video Cables", r"hdmi|vga|dvi|displayport|\bsvga|monitor|video|coax"),
        ("USB Cables", r"\busb"), ("Power Cables", r"power|\bac\b|\bc1[34]\b"),
        ("Audio Cables", r"audio|3\.5 ?mm|rca|optical|toslink"),
    ],
    "Printers & Supplies": [
        ("Toner", r"toner"), ("Ink", r"\bink\b|inkjet cartridge|singlepack|multipack|pgi-|cli-"),
        ("Labels", r"\blabels?\b"), ("Paper", r"paper|\bfilm\b|transparenc|\bmedia\b"),
        ("Scanners", r"scanner"),
        ("Printers", r"printer|laserjet|\bmfp\b|multifunction|\bfax machine|\bdpi\b"),
        ("Printer Parts", r"drum|fuser|maintenance|imaging|ribbon|print ?head|roller|tray|"
                          r"developer|feeder|duplex|finisher|tractor|sheets"),
    ],
    "Laptops & Tablets": [
        ("Tablets", r"tablet|ipad"), ("Chromebooks", r"chromebook"),
        ("Handhelds", r"handheld|\bpda\b"),
        ("Laptop Accessories", r"\bbag|case|sleeve|battery|adapter|charger|dock|lock|stand"),
        ("Laptops", r"."),
    ],
    "Computers & Servers": [
        ("Servers", r"server"), ("Workstations", r"workstation"),
        ("All-in-Ones", r"all-in-one"), ("Desktops", r"."),
    ],
    "Storage & Media": [
        ("Hard Drives", r"hdd|hard (?:disk )?drive"), ("SSDs", r"ssd|solid state|nvme|u\.2"),
        ("Optical Media", r"dvd|cd-r|blu-ray|bd-r"), ("Tape", r"tape|lto"),
        ("Memory Cards & Flash", r"flash|memory card|\bsd"), ("Network Storage", r"nas|san\b"),
    ],
    "Components": [
        ("Processors", r"processor|\bcpu\b"), ("Memory", r"memory|\bram\b|ddr|dimm"),
        ("Motherboards", r"motherboard|board"), ("Cases & Chassis", r"chassis|case"),
        ("Cooling", r"fan|cooler|heat ?sink|thermal"),
        ("Graphics Cards", r"graphics|video card|gpu|geforce|radeon|quadro"),
        ("Controllers & Cards", r"raid|controller|card|\bnic\b|pci"),
        ("Power Supplies", r"power supply|psu"),
    ],
    "Networking": [
        ("Switches", r"switch"), ("Routers", r"router|gateway|modem"),
        ("Wireless", r"access point|wireless|wlan|wi-fi|antenna"),
        ("Transceivers & Converters", r"transceiver|sfp|media converter"),
        ("KVM", r"kvm"), ("Powerline", r"powerline"), ("Print Servers", r"print server"),
        ("Cabling Accessories", r"faceplate|wall plate|outlet|punch ?down|keystone|modular|panel"),
    ],
    "Monitors & Projectors": [
        ("Projectors", r"projector|projection|lamp"), ("TVs", r"\btv\b|television"),
        ("Digital Photo Frames", r"photo ?frame"),
        ("Screen Filters", r"filter|protector|anti-glare"), ("Monitors", r"."),
    ],
    "Audio & Video": [
        ("Headphones & Headsets", r"head(?:phone|set)|ear(?:phone|bud)"),
        ("Speakers", r"speaker|soundbar"), ("Microphones", r"microphone"),
        ("Portable Players", r"mp[34]"), ("AV Transmission", r"\bav\b|extender"),
    ],
}

# product_type values that do not name a kind of thing
VAGUE_TYPES = frozenset({
    "original", "compatible", "1", "2", "on-site", "pick-up&return", "system",
    "spares and accessories", "kit", "set", "other", "unknown", "standard", "professional",
})
