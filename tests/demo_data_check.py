#!/usr/bin/env python3
"""Checks deploy/demo/*.csv against the city's territory: every neighbourhood served by exactly
one centre of its own district, 40 centres, every postcode 08001-08042 mapped once to a real
neighbourhood. usage: demo_data_check.py TERRITORY_CSV CENTRES_CSV POSTCODES_CSV"""
import csv
import sys


def rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def main(territory_csv, centres_csv, postcodes_csv):
    errors = []
    district_of = {r["neighbourhood_code"]: r["district_code"] for r in rows(territory_csv)}
    served = {}
    centres = rows(centres_csv)
    for c in centres:
        if "(demo)" not in c["centre_name"]:
            errors.append(f"{c['centre_code']}: name does not say (demo)")
        for hood in c["neighbourhood_codes"].split():
            if hood not in district_of:
                errors.append(f"{c['centre_code']}: unknown neighbourhood {hood}")
            elif district_of[hood] != c["district_code"]:
                errors.append(f"{c['centre_code']}: neighbourhood {hood} is in district "
                              f"{district_of[hood]}, not {c['district_code']}")
            served.setdefault(hood, []).append(c["centre_code"])
    for hood in sorted(district_of):
        if len(served.get(hood, [])) != 1:
            errors.append(f"neighbourhood {hood} served by {served.get(hood, [])}, want one centre")
    if len(centres) != 40 or len({c["centre_code"] for c in centres}) != 40:
        errors.append(f"{len(centres)} centres (distinct codes required), want 40")
    postcodes = [r["postcode"] for r in rows(postcodes_csv)]
    want = [f"080{n:02d}" for n in range(1, 43)]
    if sorted(postcodes) != want:
        errors.append("postcodes are not exactly 08001..08042, once each")
    for r in rows(postcodes_csv):
        if r["neighbourhood_code"] not in district_of:
            errors.append(f"postcode {r['postcode']}: unknown neighbourhood {r['neighbourhood_code']}")
    for e in errors:
        print("demo data:", e, file=sys.stderr)
    print(f"demo data: {len(district_of)} neighbourhoods, {len(centres)} centres, "
          f"{len(postcodes)} postcodes: {'FAILED' if errors else 'ok'}")
    return 1 if errors else 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
