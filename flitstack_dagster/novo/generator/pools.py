"""Word lists for a plausible municipal CMMS: people, places, equipment, phrases.

Lists marked `_UNICODE` hold characters Windows-1252 cannot encode; the world only uses them when
the bundle's encoding is UTF-8.
"""

from __future__ import annotations

FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen",
    "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Sandra", "Luis", "Ashley",
    "Steven", "Kimberly", "Andrew", "Emily", "Kenneth", "Donna", "Joshua", "Michelle", "Kevin", "Carol",
    "Brian", "Amanda", "Jorge", "Melissa", "Tyrone", "Deborah", "Wei", "Priya", "Ahmed", "Olga",
)
FIRST_NAMES_LATIN1 = ("José", "Zoë", "Renée", "André", "Björn", "Inés", "François", "Søren", "Chloé", "Raúl")
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
    "O'Brien", "McDonald", "Van Dyke", "De La Cruz", "Kowalski", "Patel", "Chen", "Okafor", "Schmidt", "Novak",
)
LAST_NAMES_LATIN1 = ("Muñoz", "Peña", "Müller", "Ibáñez", "Gómez", "Þórsson", "Åberg", "Nuñez", "Díaz", "Côté")
LAST_NAMES_UNICODE = ("Nowakowski-Łukasz", "Đặng", "Ōtani", "Kuźniar")

STREETS = (
    "Main St", "Oak Ave", "Maple Dr", "Elm St", "Washington Blvd", "Lincoln Ave", "Park Rd", "Lake St",
    "Hillcrest Dr", "Industrial Pkwy", "Riverside Dr", "Cedar Ln", "Commerce Way", "Evergreen Terrace",
    "Pine St", "2nd Ave", "5th St", "Water Works Rd", "Fairground Rd", "Airport Blvd",
)
CITIES = (("Springfield", "IL", "627"), ("Shelbyville", "IL", "625"), ("Capital City", "IL", "626"),
          ("Ogdenville", "IL", "628"), ("North Haverbrook", "IL", "629"))

INTERNAL_DEPARTMENTS = (
    "Public Works", "Utilities", "Facilities", "Parks & Recreation", "Water", "Wastewater", "Fleet",
    "Streets & Traffic", "Police", "Fire", "Information Technology", "Library", "Airport",
)
CUSTOMER_DEPARTMENTS = (
    "Springfield ISD – Facilities", "County Health – Operations", "Housing Authority – Maintenance",
    "Transit District – Yards",
)

CUSTOMER_ACCOUNTS = (
    "Springfield ISD", "Springfield County", "Springfield Housing Authority", "Metro Transit District",
    "St. Mary's Hospital", "Riverside HOA", "Lakeview Senior Center", "Springfield Community College",
    "Shelbyville Township", "Capital City Library District", "Evergreen Cemetery Assn.", "Oak Park District",
)
VENDOR_ACCOUNTS = (
    "Acme Mechanical, Inc.", "Bluewater Plumbing & Drain", "Summit Electrical Contractors", "Greenway Landscaping",
    "TriState HVAC Services", "Precision Overhead Door", "Allied Roofing LLC", "Springfield ISD",
    "Midwest Elevator Co.", "Clearview Glass", "Sparky's Towing", "Krusty Konstruction",
)
SUPPLIER_ACCOUNTS = (
    "Grainger", "Ferguson Waterworks", "Fastenal", "Home Depot Pro", "Napa Auto Parts", "Core & Main",
    "HD Supply", "Consolidated Pipe & Supply", "Border States Electric", "Uline",
)
EMAIL_DOMAINS = ("springfield.gov", "gmail.com", "yahoo.com", "outlook.com", "aol.com")

JOB_TITLES_TECH = (
    "Maintenance Technician I", "Maintenance Technician II", "Electrician", "Plumber", "HVAC Technician",
    "Fleet Mechanic", "Equipment Operator", "Crew Leader", "Water Plant Operator", "Facilities Supervisor",
    "Groundskeeper", "Carpenter",
)
JOB_TITLES_REQ = (
    "Office Manager", "Principal", "Librarian", "Recreation Coordinator", "Administrative Assistant",
    "Building Manager", "Police Sergeant", "Fire Captain", "Resident", "Property Manager", "",
)

LOCATIONS = (
    "Central Campus", "Northside Water Plant", "South Treatment Works", "Civic Center", "Fleet Yard",
    "Riverside Park", "Municipal Airport", "East Reservoir", "Public Safety Complex", "Westgate Industrial Park",
    "Evergreen Cemetery", "Downtown District",
)
FACILITIES = (
    "City Hall", "Pump House", "Fire Station", "Police Precinct", "Main Library", "Community Center",
    "Maintenance Garage", "Recreation Center", "Aquatic Center", "Lift Station", "Admin Building",
    "Central Storeroom", "Salt Dome", "Transfer Station",
)
EQUIPMENT = (
    ("Centrifugal Pump", "Goulds"), ("Air Handler", "Trane"), ("Rooftop Unit", "Carrier"), ("Boiler", "Lochinvar"),
    ("Chiller", "York"), ("Emergency Generator", "Generac"), ("Elevator", "Otis"), ("Backflow Preventer", "Watts"),
    ("Fire Alarm Panel", "Notifier"), ("Overhead Door", "Clopay"), ("Water Heater", "A.O. Smith"),
    ("VFD", "ABB"), ("Compressor", "Ingersoll Rand"), ("Exhaust Fan", "Greenheck"), ("Sump Pump", "Zoeller"),
    ("Traffic Signal Cabinet", "Econolite"), ("Playground Structure", "GameTime"), ("Irrigation Controller", "Rain Bird"),
)
COMPONENTS = ("Motor", "Impeller", "Bearing Assembly", "Control Board", "Belt Drive", "Compressor", "Blower",
              "Valve Actuator", "Starter", "Sensor Array")
SUBCOMPONENTS = ("Seal Kit", "Coupling", "Relay", "Filter Housing", "Gasket Set", "Thermostat")
VEHICLES = (("F-250 Pickup", "Ford"), ("Silverado 2500", "Chevrolet"), ("Dump Truck 7400", "International"),
            ("Street Sweeper", "Elgin"), ("Backhoe 310L", "John Deere"), ("Explorer Interceptor", "Ford"),
            ("Refuse Packer", "Mack"), ("Bucket Truck", "Altec"))
INFRASTRUCTURE = ("Bridge", "Hydrant", "Storm Culvert", "Traffic Signal", "Water Main Segment", "Sidewalk Segment",
                  "Retaining Wall", "Manhole", "Streetlight")

PART_CATEGORIES = (
    ("Filters", "FLT", ("ea", "box")), ("Electrical", "ELE", ("ea", "ft")), ("Plumbing", "PLB", ("ea", "ft")),
    ("HVAC", "HV", ("ea", "lb")), ("Fleet", "FLE", ("ea", "gal", "qt")), ("Hardware", "HW", ("ea", "box", "lb")),
    ("Safety", "SAF", ("ea", "pr")), ("Chemicals", "CHM", ("gal", "lb")),
)
PART_WORDS = (
    "Air Filter 20x25x2", "Pleated Filter 16x20x1", "V-Belt A42", "Ball Bearing 6204", "Contactor 40A",
    "Breaker 20A 1P", "Copper Pipe 3/4\"", "PVC Elbow 2\"", "Gate Valve 4\"", "Refrigerant R-410A",
    "Motor Oil 15W-40", "Hydraulic Fluid", "Wiper Blade 22\"", "Brake Pad Set", "LED Lamp 100W eq.",
    "Ballast 4ft", "Gasket 6\"", "Mechanical Seal 1-5/8\"", "Work Gloves L", "Safety Glasses",
    "Chlorine Tablets", "Fuse 30A", "Thermostat, programmable", "Door Closer", "Hinge 4-1/2\"",
)

WO_TITLES = (
    "Leaking faucet in {place}", "No heat in {place}", "AC not cooling - {place}", "Replace filters on {asset}",
    "Pothole on {street}", "Streetlight out at {street}", "Water main break at {street}", "Clean gutters at {place}",
    "Graffiti removal - {place}", "Inspect {asset}", "Repair {asset}", "Noise from {asset}",
    "Broken window at {place}", "Mow and trim {place}", "Snow removal {street}", "Unclog drain in {place}",
    "Replace ceiling tiles - {place}", "Hydrant flushing {street}", "Tree down on {street}", "Door won't latch - {place}",
    "Quarterly PM: {asset}", "Annual inspection: {asset}", "Oil change {asset}", "Check brakes on {asset}",
)
DESCRIPTION_SENTENCES = (
    "Caller reports the issue started yesterday afternoon.",
    "Please check before the building opens at 8 AM.",
    "Water is pooling near the east entrance; cones placed.",
    "Tenant says this has happened twice this month.",
    "Crew found the breaker tripped; reset and monitoring.",
    "Parts ordered from supplier, ETA 3-5 business days.",
    "Access via the loading dock; key at the front desk.",
    "Safety hazard – cordon off the area until repaired.",
    "Reported by councilmember's office, follow up with caller.",
    "Unit is 18 years old; consider replacement in next budget cycle.",
    "Noise is loudest at start-up, grinding sound from the motor end.",
    "See attached photo. Resident is available after 5 PM.",
    "Coordinate with Parks for the irrigation shut-off.",
    "Needs a lift; schedule with Fleet for the bucket truck.",
)
NOTE_BODIES = (
    "Spoke with requester, confirmed the location.",
    "Called vendor for a quote; waiting on a callback.",
    "Emailed building manager about access on Friday.",
    "Met on site with inspector; passed with minor notes.",
    "<b>Urgent:</b> customer called again, escalated to supervisor.",
    "Resident wrote: <i>\"please hurry, it's flooding\"</i>",
    "Pasted from email: <p>Hi team,<br>see below.</p>",
    "Form submission: <script>alert('x')</script> (sanitize me)",
    "Left voicemail. Will try again tomorrow.",
    "Parts arrived, scheduled install for Tuesday.",
)
NOTE_SUBJECTS = ("Follow-up", "Site visit", "Vendor call", "Requester update", "Access", "Quote", "Inspection",
                 "Parts", "Escalation", "")
STATUS_COMMENTS = ("", "", "", "Assigned to crew", "Waiting on parts", "Work complete", "Customer approved",
                   "Reassigned to on-call tech", "Scheduled with requester", "Duplicate request")
LABOR_NOTES = ("", "", "Diagnosed problem", "Replaced part", "Travel time", "Cleanup", "Tested and verified",
               "Met vendor on site", "After-hours callout", "Waited for access")
PROCEDURE_STEPS = (
    "Lock out / tag out the equipment.", "Inspect belts for wear and tension.", "Replace air filters.",
    "Lubricate bearings per manufacturer spec.", "Check refrigerant pressures.", "Clean condenser coils.",
    "Test emergency shutdown.", "Record meter reading.", "Inspect electrical connections for heat damage.",
    "Verify operation and remove lockout.", "Flush and inspect for leaks.", "Check fluid levels.",
)
PM_NAMES = ("Quarterly filter change", "Monthly inspection", "Annual service", "Weekly walk-through",
            "Semi-annual lubrication", "Generator load test", "Fire extinguisher check", "Oil & filter service",
            "Backflow test", "Hydrant flushing", "Playground safety audit", "Roof inspection")

ATTACHMENT_BASES = (("photo", "png"), ("Site Photo", "png"), ("Inspection Report", "pdf"), ("Quote", "pdf"),
                    ("Invoice", "pdf"), ("notes", "txt"), ("readings", "txt"), ("IMG_20260412", "png"))
ATTACHMENT_BASES_LATIN1 = (("Überprüfung Pumpe", "pdf"), ("café façade", "png"), ("Señal rota", "png"),
                           ("Résumé des travaux", "txt"))
ATTACHMENT_BASES_UNICODE = (("写真", "png"), ("Отчёт", "pdf"), ("現場メモ", "txt"), ("leak 🚰", "png"))

# Windows-1252 characters outside ASCII (the 0x80-0x9F block and Latin-1).
CP1252_SAMPLES = ("Café “Annex” – East", "Ñandú Park — pavilion", "€1,200 quote ‘approved’", "Zoë’s office…",
                  "Façade repair • phase 2", "Jalapeño Fest ™ grounds", "Crème brûlée café", "Déjà vu ‰ meter")
