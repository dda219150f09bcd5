"""Encrypted state: SQLCipher databases opened through sqlite-utils, keys from a key provider, migrations.

    from appliance.storage import open_db, key_provider_from_config
    db = open_db(db_path(data_dir, EVENTS), key_provider_from_config(config), migrations=EVENTS_MIGRATIONS)

The databases are listed once, in databases.py (`DATABASES`). Each database has its own key (labelled by the
file's stem), so one database can be crypto-erased alone.
"""

from appliance.storage.database import database_files, erase_db, open_db
from appliance.storage.databases import DATABASES, db_path
from appliance.storage.keyprovider import (
    EnvKeyProvider,
    KeyFileProvider,
    KeyProvider,
    RpiOtpKeyProvider,
    key_provider_from_config,
)
from appliance.storage.migrations import Migration, Migrations, migrate, migrate_part, schema_version
from appliance.storage.transactions import write_transaction

__all__ = [
    "DATABASES",
    "EnvKeyProvider",
    "KeyFileProvider",
    "KeyProvider",
    "Migration",
    "Migrations",
    "RpiOtpKeyProvider",
    "database_files",
    "db_path",
    "erase_db",
    "key_provider_from_config",
    "migrate",
    "migrate_part",
    "open_db",
    "schema_version",
    "write_transaction",
]
