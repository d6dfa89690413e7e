"""The cloud-config cloud-init makes of a user-data file (argv[1]), as JSON on stdout.

cloud-init's own code does it: its UserDataProcessor splits the MIME parts and unpacks the gzipped one, and its
cloud-config part handler merges them as it does at boot (naming each part as its walker does). Run with the Python
cloud-init runs with.
"""
import json
import sys
import tempfile

from cloudinit import handlers, util
from cloudinit import user_data as ud
from cloudinit.handlers.cloud_config import CloudConfigPartHandler
from cloudinit.helpers import Paths

blob = open(sys.argv[1], 'rb').read()
msg = ud.UserDataProcessor(Paths({'cloud_dir': tempfile.mkdtemp()})).process(blob)
h = CloudConfigPartHandler(Paths({'cloud_dir': tempfile.mkdtemp()}))
h.handle_part(None, handlers.CONTENT_START, None, None, None, None)
for i, part in enumerate(p for p in msg.walk() if p.get_content_maintype() != 'multipart'):
    payload = util.fully_decoded_payload(part)
    payload = payload.decode() if isinstance(payload, bytes) else payload
    h.handle_part(None, part.get_content_type(), part.get_filename() or f"part-{i + 1:03d}", payload, 1, dict(part.items()))
print(json.dumps(h.cloud_buf, sort_keys=True))
