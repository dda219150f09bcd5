"""Officer accounts for the in-van console: an id, a display name and a PIN kept only as an argon2 hash.

    from appliance.officers import OfficerStore
    officers = OfficerStore.open(data_dir, key_provider)      # officers.db, SQLCipher like every other database
    officers.add("PC1234", "1234 5678", display_name="PC Smith")
    officer = officers.verify("PC1234", pin)                  # Officer or None; same cost whether the id exists
"""

from appliance.officers.pins import PinError, check_pin_format
from appliance.officers.store import Officer, OfficerStore, check_officer_id

__all__ = ["Officer", "OfficerStore", "PinError", "check_officer_id", "check_pin_format"]
