#!/usr/bin/env python3
"""Regenerates tiny.sqlite: a synthetic 512-byte-page database with an
rpm-shaped Packages table (small rows, an overflowing one, an interior page),
small enough to seed the fuzzer."""
import os, sqlite3

if os.path.exists("tiny.sqlite"):
    os.remove("tiny.sqlite")
db = sqlite3.connect("tiny.sqlite", isolation_level=None)
db.execute("PRAGMA page_size=512")
db.execute("CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL)")
db.execute("CREATE TABLE other (a, b, c)")
db.execute("INSERT INTO other VALUES (1, 2.5, NULL)")
for i in range(1, 13):
    db.execute("INSERT INTO Packages (blob) VALUES (?)", (bytes([i]) * (i * 37),))
db.execute("INSERT INTO Packages (blob) VALUES (?)", (bytes(range(256)) * 8,))
db.execute("INSERT INTO Packages (hnum, blob) VALUES (-5, x'00')")
db.execute("INSERT INTO Packages (hnum, blob) VALUES (1000000000000, 'text, not a blob')")
db.close()
