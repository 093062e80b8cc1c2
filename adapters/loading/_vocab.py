"""Vocabulary of the synthetic catalog: a category tree (8 roots × 5 × 4 leaves), per-root
price/weight scales, title words and description sentences, colors, brand syllables."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Root:
    name: str
    median_usd: float  # median price of the root's products
    sigma: float  # log-normal spread of prices
    weight_g: int  # median shipping weight
    sizes: str | None  # "apparel", "shoes" (men's or women's runs) or None: colors only
    subs: dict[str, list[str]]  # subcategory -> leaves
    adjectives: list[str]
    features: list[str]
    sentences: list[str]


ROOTS: list[Root] = [
    Root("Electronics", 89.0, 0.9, 600, None, {
        "Audio": ["Headphones", "Earbuds", "Bluetooth Speakers", "Soundbars"],
        "Computers": ["Laptops", "Monitors", "Keyboards", "Mice"],
        "Phones & Tablets": ["Smartphones", "Tablets", "Phone Cases", "Chargers"],
        "Cameras": ["Digital Cameras", "Action Cameras", "Camera Lenses", "Tripods"],
        "TV & Video": ["Televisions", "Streaming Devices", "Projectors", "TV Mounts"]},
        ["Wireless", "Compact", "Pro", "Smart", "Portable", "Ultra-Slim", "4K", "Noise-Cancelling"],
        ["Bluetooth 5.3", "USB-C", "Fast Charging", "Long Battery Life", "HD", "Dual Band"],
        ["Designed for everyday use with a long-lasting battery.",
         "Pairs in seconds and stays connected across rooms.",
         "Includes a USB-C cable and a two-year limited warranty."]),
    Root("Home & Kitchen", 34.0, 0.8, 1500, None, {
        "Cookware": ["Frying Pans", "Saucepans", "Dutch Ovens", "Baking Sheets"],
        "Small Appliances": ["Blenders", "Coffee Makers", "Toasters", "Air Fryers"],
        "Bedding": ["Sheet Sets", "Comforters", "Pillows", "Blankets"],
        "Furniture": ["Office Chairs", "Bookshelves", "Coffee Tables", "Bar Stools"],
        "Storage & Organization": ["Storage Bins", "Shelf Organizers", "Laundry Baskets",
                                   "Drawer Dividers"]},
        ["Nonstick", "Stainless Steel", "Stackable", "Modern", "Classic", "Large", "Space-Saving"],
        ["Dishwasher Safe", "BPA-Free", "Easy Assembly", "Machine Washable", "Set of 2"],
        ["Built to last in busy kitchens and family homes.",
         "Easy to clean and simple to store.",
         "Backed by a satisfaction guarantee."]),
    Root("Clothing", 24.0, 0.6, 300, "apparel", {
        "Tops": ["T-Shirts", "Sweaters", "Hoodies", "Polo Shirts"],
        "Bottoms": ["Jeans", "Chinos", "Shorts", "Leggings"],
        "Outerwear": ["Rain Jackets", "Parkas", "Fleece Jackets", "Vests"],
        "Activewear": ["Running Shorts", "Sports Bras", "Track Pants", "Compression Shirts"],
        "Sleep & Lounge": ["Pajama Sets", "Robes", "Lounge Pants", "Sleep Shirts"]},
        ["Classic", "Slim-Fit", "Relaxed", "Lightweight", "Organic Cotton", "Stretch", "Cozy"],
        ["Moisture-Wicking", "Quick-Dry", "Breathable", "Soft Brushed", "Tagless"],
        ["Cut for comfort from soft, breathable fabric.",
         "Machine wash cold, tumble dry low.",
         "True to size; see the size chart for details."]),
    Root("Shoes", 59.0, 0.5, 900, "shoes", {
        "Athletic": ["Running Shoes", "Trail Running Shoes", "Basketball Shoes",
                     "Training Shoes"],
        "Casual": ["Sneakers", "Loafers", "Slip-Ons", "Canvas Shoes"],
        "Boots": ["Hiking Boots", "Chelsea Boots", "Work Boots", "Rain Boots"],
        "Sandals": ["Slides", "Flip-Flops", "Sport Sandals", "Clogs"],
        "Formal": ["Oxfords", "Derby Shoes", "Heels", "Flats"]},
        ["Lightweight", "Waterproof", "Cushioned", "Leather", "Breathable", "Slip-Resistant"],
        ["Memory Foam Insole", "Mesh Upper", "Rubber Outsole", "Arch Support", "Wide Fit"],
        ["A cushioned footbed keeps you comfortable all day.",
         "Durable rubber outsole with reliable grip.",
         "Runs true to size."]),
    Root("Sports & Outdoors", 39.0, 0.8, 1200, None, {
        "Camping": ["Tents", "Sleeping Bags", "Camping Stoves", "Headlamps"],
        "Fitness": ["Dumbbells", "Yoga Mats", "Resistance Bands", "Kettlebells"],
        "Cycling": ["Bike Helmets", "Bike Lights", "Cycling Gloves", "Bike Locks"],
        "Water Sports": ["Swim Goggles", "Life Jackets", "Snorkel Sets", "Paddle Boards"],
        "Team Sports": ["Soccer Balls", "Basketballs", "Baseball Gloves", "Shin Guards"]},
        ["Ultralight", "Heavy-Duty", "Adjustable", "All-Weather", "Compact", "Professional"],
        ["Non-Slip", "Rechargeable", "Water-Resistant", "Quick Setup", "Carry Bag Included"],
        ["Tested outdoors in every season.",
         "Packs down small for travel.",
         "Made for beginners and experienced athletes alike."]),
    Root("Beauty & Personal Care", 16.0, 0.7, 250, None, {
        "Skin Care": ["Moisturizers", "Cleansers", "Serums", "Sunscreens"],
        "Hair Care": ["Shampoos", "Conditioners", "Hair Dryers", "Hair Straighteners"],
        "Makeup": ["Lipsticks", "Foundations", "Mascaras", "Eyeshadow Palettes"],
        "Fragrance": ["Eau de Parfum", "Eau de Toilette", "Body Mists", "Colognes"],
        "Shaving": ["Electric Shavers", "Razors", "Shaving Creams", "Beard Trimmers"]},
        ["Hydrating", "Gentle", "Fragrance-Free", "Long-Lasting", "Travel-Size", "Vegan"],
        ["Hyaluronic Acid", "Vitamin C", "Paraben-Free", "Dermatologist Tested", "SPF 30"],
        ["Suitable for all skin types.",
         "Cruelty-free and never tested on animals.",
         "Use daily for best results."]),
    Root("Toys & Games", 22.0, 0.7, 700, None, {
        "Building Toys": ["Building Sets", "Magnetic Tiles", "Marble Runs", "Construction Kits"],
        "Board Games": ["Strategy Games", "Family Games", "Card Games", "Jigsaw Puzzles"],
        "Dolls & Figures": ["Fashion Dolls", "Action Figures", "Plush Toys", "Dollhouses"],
        "Outdoor Play": ["Water Guns", "Kites", "Scooters", "Trampolines"],
        "Learning": ["STEM Kits", "Science Kits", "Kids Tablets", "Flash Cards"]},
        ["Classic", "Deluxe", "Mini", "Creative", "Interactive", "Educational", "Giant"],
        ["Ages 3+", "Ages 8+", "2-6 Players", "1000 Pieces", "Battery-Free"],
        ["Hours of screen-free fun for the whole family.",
         "Encourages creativity and problem solving.",
         "Meets all applicable toy safety standards."]),
    Root("Tools & Home Improvement", 45.0, 0.9, 1800, None, {
        "Power Tools": ["Cordless Drills", "Circular Saws", "Impact Drivers", "Angle Grinders"],
        "Hand Tools": ["Screwdriver Sets", "Wrench Sets", "Hammers", "Pliers"],
        "Lighting": ["LED Bulbs", "Ceiling Lights", "Desk Lamps", "Flashlights"],
        "Plumbing": ["Kitchen Faucets", "Shower Heads", "Toilet Seats", "Pipe Fittings"],
        "Safety": ["Smoke Detectors", "Safety Glasses", "Work Gloves", "Fire Extinguishers"]},
        ["Cordless", "Heavy-Duty", "Brushless", "Dimmable", "Magnetic", "Industrial", "20V"],
        ["Lithium-Ion Battery", "Energy Saving", "Chrome Finish", "Ergonomic Grip", "Tool-Free"],
        ["Professional performance for home projects.",
         "Backed by a three-year limited warranty.",
         "Everything you need to get started is in the box."]),
]

COLORS = ["Black", "White", "Navy", "Gray", "Red", "Blue", "Green", "Beige", "Brown", "Pink",
          "Olive", "Burgundy"]
BRAND_HEADS = ["Al", "Bel", "Cor", "Dav", "El", "Fen", "Gal", "Hal", "Ir", "Jun", "Kel", "Lum",
               "Mar", "Nor", "Or", "Pel", "Quin", "Ros", "Sol", "Tav", "Ul", "Ven", "Wil", "Xan",
               "Yar", "Zen", "Ash", "Bram", "Cal", "Dor", "Em", "Fal", "Gren", "Hav", "Ind",
               "Jas", "Kor", "Lin", "Mon", "Nev"]
BRAND_TAILS = ["ara", "ex", "ion", "ora", "ix", "ano", "eon", "ia", "is", "on", "ura", "ent",
               "ova", "ys", "ite", "ella", "ard", "ton", "ane", "ero", "ium", "ic", "ley",
               "wood", "field", "line", "craft", "works", "gear", "lab", "co", "tek", "ly",
               "ique", "ster", "ado", "ina", "ux", "el", "an", "oma", "etta", "yx", "ola", "ant",
               "ive", "orra", "ance", "oni", "ust"]
