#!/usr/bin/env python3
"""Regenerates rpmdb.sqlite and rpmdb.sqlite-wal in this directory.

A synthetic rpm SQLite database in WAL mode whose write-ahead log holds a
committed transaction not yet checkpointed into the main file. The header
blobs are copied from ../sqlite/amazonlinux2023/rpmdb.sqlite (go-rpmdb, MIT).
Usage: generate.py SOURCE_RPMDB_SQLITE (a copy: reading it creates -shm).
"""
import os, shutil, sqlite3, sys

src = sqlite3.connect(sys.argv[1])
blobs = {h: b for h, b in src.execute("SELECT hnum, blob FROM Packages WHERE hnum IN (3, 4, 5, 6)")}
src.close()

for f in ("work.sqlite", "work.sqlite-wal", "work.sqlite-shm"):
    if os.path.exists(f):
        os.remove(f)
db = sqlite3.connect("work.sqlite", isolation_level=None)
db.execute("PRAGMA page_size=4096")
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA wal_autocheckpoint=0")
db.execute("CREATE TABLE IF NOT EXISTS 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL)")
db.execute("CREATE TABLE IF NOT EXISTS 'Name' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL)")
for h in (3, 4, 5):
    db.execute("INSERT INTO Packages (hnum, blob) VALUES (?, ?)", (h, blobs[h]))
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
# Only in the log: package 4 removed, package 6 added.
db.execute("BEGIN")
db.execute("DELETE FROM Packages WHERE hnum = 4")
db.execute("INSERT INTO Packages (hnum, blob) VALUES (?, ?)", (6, blobs[6]))
db.execute("COMMIT")
shutil.copy("work.sqlite", "rpmdb.sqlite")
shutil.copy("work.sqlite-wal", "rpmdb.sqlite-wal")
db.close()
for f in ("work.sqlite", "work.sqlite-wal", "work.sqlite-shm"):
    if os.path.exists(f):
        os.remove(f)
