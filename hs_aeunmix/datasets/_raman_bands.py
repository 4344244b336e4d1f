"""Raman band tables of real compounds for :mod:`._raman_compounds`.

Each band is ``(position, fwhm, height)``: the Raman shift of the band maximum
in cm⁻¹, its natural (Lorentzian) full width at half maximum in cm⁻¹ and its
peak height relative to the compound's strongest band, before the instrument
broadens it. The values are approximate literature values read from typical
published spectra (room temperature, visible or near-infrared excitation);
positions are given to about 2 cm⁻¹, widths and heights to about 30 %, except
where a calibration standard gives the positions to 0.1 cm⁻¹. Sources:

* minerals: the RRUFF project database (Lafuente et al., "The power of
  databases: the RRUFF project", in *Highlights in Mineralogical
  Crystallography*, De Gruyter, 2015, pp. 1-30); graphitic carbon after
  Ferrari & Robertson, Phys. Rev. B 61, 14095 (2000); silicon after Parker
  et al., Phys. Rev. 155, 712 (1967);
* polystyrene and paracetamol (4-acetamidophenol) positions: the Raman shift
  standards of ASTM E1840 (Standard Guide for Raman Shift Standards for
  Spectrometer Calibration);
* other polymers, drugs and excipients: G. Socrates, *Infrared and Raman
  Characteristic Group Frequencies*, 3rd ed., Wiley (2001), and typical
  published spectra;
* biological compounds: Movasaghi, Rehman & Rehman, Appl. Spectrosc. Rev. 42,
  493-541 (2007), and Czamara et al., J. Raman Spectrosc. 46, 4-20 (2015) for
  the lipids.

``role`` says where a compound sits in a scene: for drugs the part of a
tablet it makes (``"excipient"`` compounds can form the matrix), for
biological compounds the cell compartment it prefers (``"cytoplasm"``,
``"nucleus"``, ``"granules"``, ``"droplets"``, ``"membrane"``,
``"medium"``), ``"substrate"`` for the sample supports and ``"phase"``
otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

SAMPLE_TYPES = ("mineral", "polymer", "pharmaceutical", "biological")


@dataclass(frozen=True)
class Compound:
    """A compound's Raman bands and where it occurs.

    Attributes
    ----------
    name : str
        Name of the compound.
    sample_types : tuple of str
        Sample types (:data:`SAMPLE_TYPES`, or ``"substrate"``) in which the
        compound is a native ingredient.
    role : str
        Part the compound plays in a scene (see the module docstring).
    bands : tuple of (float, float, float)
        ``(position cm⁻¹, natural FWHM cm⁻¹, relative height)`` per band.
    """

    name: str
    sample_types: tuple[str, ...]
    role: str
    bands: tuple[tuple[float, float, float], ...]


def _compound(
    name: str, sample_types: tuple[str, ...], role: str, bands: str
) -> Compound:
    # Bands are written "position fwhm height", comma separated, so that the
    # table reads like the literature tables it comes from.
    parsed = tuple(
        (float(position), float(fwhm), float(height))
        for position, fwhm, height in (band.split() for band in bands.split(","))
    )
    return Compound(name, sample_types, role, parsed)


_TABLE = (
    # --- minerals ----------------------------------------------------------
    _compound(
        "calcite",
        ("mineral",),
        "phase",
        "1086 3 1, 712 3 0.12, 282 9 0.25, 156 8 0.2, 1436 8 0.03, 1749 4 0.03",
    ),
    _compound(
        "aragonite",
        ("mineral",),
        "phase",
        "1085 3 1, 705 3 0.1, 701 3 0.08, 206 6 0.3, 181 5 0.12, "
        "153 6 0.25, 1462 6 0.03",
    ),
    _compound(
        "dolomite",
        ("mineral",),
        "phase",
        "1097 4 1, 725 4 0.12, 299 8 0.35, 176 7 0.25, 1442 8 0.04",
    ),
    _compound(
        "quartz",
        ("mineral",),
        "phase",
        "464 7 1, 206 20 0.35, 128 6 0.3, 355 6 0.1, 263 8 0.06, "
        "807 8 0.04, 1082 8 0.03, 1160 8 0.02",
    ),
    _compound(
        "anatase (TiO2)",
        ("mineral", "pharmaceutical"),
        "coating",
        "144 8 1, 197 7 0.08, 397 20 0.2, 516 20 0.2, 639 22 0.25",
    ),
    _compound(
        "rutile (TiO2)",
        ("mineral",),
        "phase",
        "143 8 0.1, 235 60 0.3, 447 32 1, 612 40 0.9",
    ),
    _compound(
        "gypsum",
        ("mineral",),
        "phase",
        "1008 5 1, 1135 6 0.1, 415 8 0.2, 493 8 0.15, 619 6 0.07, "
        "670 6 0.06, 3404 20 0.3, 3494 18 0.25",
    ),
    _compound(
        "hematite",
        ("mineral",),
        "phase",
        "226 8 0.7, 245 6 0.15, 293 10 1, 411 16 0.35, 498 18 0.07, "
        "612 25 0.15, 1320 60 0.45",
    ),
    _compound(
        "magnetite",
        ("mineral",),
        "phase",
        "668 35 1, 538 40 0.2, 306 40 0.2, 193 20 0.08",
    ),
    _compound(
        "pyrite",
        ("mineral",),
        "phase",
        "343 7 1, 379 8 0.75, 430 14 0.1",
    ),
    _compound(
        "diamond",
        ("mineral",),
        "phase",
        "1332 2 1",
    ),
    _compound(
        "graphitic carbon",
        ("mineral",),
        "phase",
        "1350 60 0.7, 1590 40 1, 1620 30 0.2, 2700 80 0.35, 2940 90 0.12",
    ),
    _compound(
        "olivine (forsterite)",
        ("mineral",),
        "phase",
        "822 7 0.8, 855 8 1, 965 12 0.12, 918 10 0.06, 608 10 0.05, "
        "545 10 0.05, 305 10 0.1",
    ),
    _compound(
        "hydroxyapatite",
        ("mineral", "biological"),
        "granules",
        "962 4 1, 430 8 0.12, 450 8 0.1, 591 8 0.08, 1048 8 0.08, 1076 10 0.05",
    ),
    _compound(
        "barite",
        ("mineral",),
        "phase",
        "988 4 1, 462 6 0.25, 453 6 0.2, 617 6 0.08, 647 6 0.06, "
        "1140 8 0.06, 1167 8 0.03",
    ),
    _compound(
        "talc",
        ("mineral", "pharmaceutical"),
        "glidant",
        "678 8 1, 195 10 0.25, 362 8 0.3, 1050 10 0.08, 3677 6 0.6",
    ),
    # --- polymers ----------------------------------------------------------
    _compound(
        "polystyrene",
        ("polymer",),
        "phase",
        "620.9 5 0.15, 795.8 8 0.05, 1001.4 3 1, 1031.8 4 0.3, "
        "1155.3 6 0.08, 1450.5 12 0.1, 1583.1 5 0.1, 1602.3 6 0.35, "
        "2852.4 15 0.15, 2904.5 25 0.5, 3054.3 12 0.95",
    ),
    _compound(
        "polyethylene",
        ("polymer",),
        "phase",
        "1063 10 0.45, 1130 8 0.4, 1296 9 0.55, 1418 10 0.2, "
        "1440 16 0.6, 1460 15 0.35, 2720 30 0.05, 2848 12 1, "
        "2882 14 0.95",
    ),
    _compound(
        "PMMA",
        ("polymer",),
        "phase",
        "601 12 0.15, 812 12 0.5, 968 15 0.15, 987 15 0.15, "
        "1452 18 0.45, 1728 15 0.3, 2843 20 0.15, 2952 18 1, "
        "3001 25 0.3",
    ),
    _compound(
        "PET",
        ("polymer",),
        "phase",
        "632 8 0.1, 795 10 0.08, 857 10 0.15, 1096 12 0.2, 1117 12 0.2, "
        "1289 15 0.4, 1615 10 1, 1726 18 0.55, 2968 25 0.2, 3083 15 0.3",
    ),
    _compound(
        "polypropylene",
        ("polymer",),
        "phase",
        "398 10 0.35, 809 8 0.7, 841 8 0.6, 973 10 0.3, 998 8 0.3, "
        "1152 10 0.3, 1168 10 0.2, 1330 10 0.3, 1458 14 0.55, "
        "2840 20 0.5, 2883 20 0.9, 2952 20 1",
    ),
    _compound(
        "nylon-6,6",
        ("polymer",),
        "phase",
        "935 12 0.25, 1064 12 0.2, 1130 12 0.3, 1240 25 0.2, "
        "1300 15 0.35, 1440 16 0.6, 1636 20 0.5, 2900 35 1, 3300 40 0.2",
    ),
    _compound(
        "PTFE",
        ("polymer",),
        "phase",
        "291 12 0.45, 385 12 0.5, 577 12 0.2, 731 8 1, 1216 15 0.45, "
        "1300 15 0.3, 1381 12 0.55",
    ),
    _compound(
        "PVC",
        ("polymer",),
        "phase",
        "637 15 1, 694 15 0.8, 1100 20 0.2, 1333 15 0.25, 1430 15 0.5, "
        "2911 20 0.9, 2970 25 0.4",
    ),
    _compound(
        "polycarbonate",
        ("polymer",),
        "phase",
        "636 10 0.2, 704 8 0.35, 888 8 1, 1112 10 0.6, 1180 10 0.45, "
        "1236 10 0.55, 1602 8 0.8, 1775 12 0.15, 2970 20 0.4, "
        "3070 15 0.6",
    ),
    # --- drugs and excipients ----------------------------------------------
    _compound(
        "paracetamol",
        ("pharmaceutical",),
        "api",
        "213.3 8 0.3, 329.2 8 0.15, 390.9 8 0.2, 465.1 8 0.2, 504 8 0.1, "
        "651.6 8 0.25, 710.8 8 0.1, 797.2 8 0.4, 857.9 8 1, "
        "968.7 8 0.05, 1105.5 8 0.1, 1168.5 8 0.45, 1236.8 8 0.55, "
        "1278.5 8 0.1, 1323.9 8 0.5, 1371.5 8 0.15, 1515.1 8 0.1, "
        "1561.5 8 0.35, 1648.4 10 0.45, 2931.1 12 0.2, 3064.6 12 0.3",
    ),
    _compound(
        "ibuprofen",
        ("pharmaceutical",),
        "api",
        "636 8 0.2, 746 8 0.3, 832 8 0.55, 1006 6 0.15, 1183 8 0.3, "
        "1206 8 0.25, 1340 12 0.2, 1449 12 0.35, 1608 8 1, 2870 15 0.8, "
        "2935 15 0.85",
    ),
    _compound(
        "aspirin",
        ("pharmaceutical",),
        "api",
        "551 8 0.25, 750 8 0.5, 1043 8 0.4, 1191 8 0.35, 1292 10 0.3, "
        "1606 8 1, 1625 8 0.45, 1752 10 0.15, 2940 10 0.2, 3075 12 0.3",
    ),
    _compound(
        "caffeine",
        ("pharmaceutical",),
        "api",
        "555 8 0.8, 644 8 0.3, 741 8 0.3, 1023 8 0.15, 1285 10 0.3, "
        "1329 10 1, 1599 12 0.2, 1655 12 0.3, 1697 10 0.45, 2955 15 0.3, "
        "3108 12 0.1",
    ),
    _compound(
        "lactose monohydrate",
        ("pharmaceutical",),
        "excipient",
        "356 10 1, 476 10 0.45, 849 10 0.25, 1087 12 0.6, 1120 12 0.35, "
        "1262 12 0.15, 1336 14 0.2, 1375 14 0.2, 2890 20 0.8, "
        "2977 20 0.9",
    ),
    _compound(
        "microcrystalline cellulose",
        ("pharmaceutical",),
        "excipient",
        "380 15 0.55, 437 12 0.3, 458 12 0.25, 520 15 0.15, 895 15 0.15, "
        "1095 14 0.7, 1120 12 0.5, 1339 15 0.3, 1379 15 0.35, "
        "1477 15 0.25, 2895 40 1",
    ),
    _compound(
        "magnesium stearate",
        ("pharmaceutical",),
        "lubricant",
        "891 12 0.15, 1063 10 0.3, 1130 10 0.3, 1296 10 0.4, "
        "1440 14 0.5, 2848 14 1, 2882 14 0.8, 2935 20 0.4",
    ),
    _compound(
        "mannitol",
        ("pharmaceutical",),
        "excipient",
        "420 10 0.3, 878 10 1, 1037 10 0.6, 1065 10 0.35, 1133 10 0.45, "
        "1475 12 0.35, 2948 20 0.9",
    ),
    _compound(
        "starch",
        ("pharmaceutical",),
        "excipient",
        "478 15 1, 865 15 0.3, 940 15 0.4, 1083 15 0.4, 1126 15 0.45, "
        "1340 15 0.4, 1460 15 0.25, 2910 40 0.8",
    ),
    # --- biological --------------------------------------------------------
    _compound(
        "protein",
        ("biological",),
        "cytoplasm",
        "621 8 0.08, 643 8 0.08, 830 10 0.12, 853 10 0.15, 935 20 0.2, "
        "1003 6 0.4, 1031 8 0.12, 1125 20 0.12, 1250 50 0.35, "
        "1340 30 0.3, 1449 25 0.55, 1655 35 0.6, 2935 50 1, 3062 20 0.1",
    ),
    _compound(
        "phospholipid",
        ("biological",),
        "membrane",
        "719 8 0.3, 875 12 0.15, 1064 15 0.25, 1089 15 0.25, "
        "1128 12 0.25, 1267 20 0.25, 1301 15 0.5, 1440 22 0.7, "
        "1660 22 0.3, 1740 20 0.12, 2850 20 1, 2885 20 0.75, "
        "2935 25 0.45",
    ),
    _compound(
        "triolein",
        ("biological",),
        "droplets",
        "970 15 0.1, 1080 20 0.15, 1266 18 0.45, 1302 15 0.5, "
        "1440 20 0.7, 1656 14 0.6, 1747 15 0.15, 2854 20 1, 2897 25 0.6, "
        "3009 15 0.25",
    ),
    _compound(
        "DNA",
        ("biological",),
        "nucleus",
        "670 12 0.3, 728 12 0.4, 785 15 1, 832 15 0.2, 1095 18 0.7, "
        "1250 20 0.3, 1340 20 0.5, 1375 18 0.4, 1487 18 0.5, "
        "1578 18 0.6, 2950 50 0.3",
    ),
    _compound(
        "cytochrome c",
        ("biological",),
        "granules",
        "750 10 1, 1128 12 0.6, 1173 12 0.2, 1313 12 0.5, 1360 14 0.3, "
        "1585 14 0.8, 1638 14 0.2",
    ),
    _compound(
        "beta-carotene",
        ("biological",),
        "droplets",
        "1008 8 0.35, 1157 10 0.85, 1525 12 1, 2160 20 0.04, "
        "2310 25 0.05, 2670 25 0.06",
    ),
    _compound(
        "glycogen",
        ("biological",),
        "granules",
        "480 25 1, 850 20 0.35, 940 20 0.45, 1082 20 0.45, 1125 20 0.4, "
        "1335 20 0.35, 1380 20 0.25, 1460 20 0.2, 2910 40 0.8",
    ),
    _compound(
        "water",
        ("biological",),
        "medium",
        "1640 90 0.07, 3230 220 0.85, 3420 200 1",
    ),
    _compound(
        "collagen",
        ("biological",),
        "medium",
        "815 12 0.2, 856 12 0.35, 876 12 0.3, 938 15 0.35, 1003 6 0.25, "
        "1245 20 0.4, 1270 20 0.35, 1450 25 0.5, 1665 35 0.5, 2940 45 1",
    ),
    # --- substrates (only ever the one compound from outside the sample) ---
    _compound(
        "silicon",
        ("substrate",),
        "substrate",
        "520.7 3 1, 303 20 0.03, 960 40 0.05",
    ),
    _compound(
        "CaF2",
        ("substrate",),
        "substrate",
        "322 5 1",
    ),
    _compound(
        "glass",
        ("substrate",),
        "substrate",
        "440 150 1, 490 25 0.3, 606 20 0.15, 800 80 0.35, 1060 80 0.15, 1200 80 0.08",
    ),
)

COMPOUNDS: dict[str, Compound] = {compound.name: compound for compound in _TABLE}
