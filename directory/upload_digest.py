"""The digest of an agent upload's records: what a run compares instead of reading them (the run short cut).

Computed once, when the upload is committed (`upload_commit.commit_upload` stores it on the upload): chunks are refused
once it is committed, and the one later write into a committed upload's records is a partial upload's changes
written into the full one it changes (`partial_uploads.write_into_picture`), which is then no longer the latest
committed upload: the run compares the digest of the latest only (`sync._read_digest`), so the stored digest is
true whenever it is read.
"""

from __future__ import annotations

import hashlib

from django.db import connection

from .models import AgentUpload, AgentUploadRecord


def records_digest(upload_id: int, directory_id: str) -> str:
    """A digest of the upload's records (kind, id and data, in the order they were stored) and its domain.

    One aggregate query on PostgreSQL (md5 per row, then md5 of them in order); SQLite streams the rows.
    """
    table = connection.ops.quote_name(AgentUploadRecord._meta.db_table)
    digest = hashlib.blake2b(repr((AgentUpload.__name__, directory_id)).encode(), digest_size=16)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT count(*), md5(coalesce(string_agg(md5(kind || ':' || external_id || ':' || data::text), '' "  # noqa: S608
                f"ORDER BY id), '')) FROM {table} WHERE upload_id = %s", [upload_id])
            digest.update(repr(cursor.fetchone()).encode())
        else:
            cursor.execute(f"SELECT kind, external_id, data FROM {table} WHERE upload_id = %s ORDER BY id",  # noqa: S608
                           [upload_id])
            while rows := cursor.fetchmany(2000):
                for kind, external_id, data in rows:
                    digest.update(f"{kind}:{external_id}:{data}\x00".encode())
    return digest.hexdigest()
