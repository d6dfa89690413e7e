"""The cloud-config cloud-init makes of each user-data file named (argv[1:]), as one JSON list on stdout.

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

def merged(path):
    blob = open(path, 'rb').read()
    msg = ud.UserDataProcessor(Paths({'cloud_dir': tempfile.mkdtemp()})).process(blob)
    h = CloudConfigPartHandler(Paths({'cloud_dir': tempfile.mkdtemp()}))
    h.handle_part(None, handlers.CONTENT_START, None, None, None, None)
    for i, part in enumerate(p for p in msg.walk() if p.get_content_maintype() != 'multipart'):
        payload = util.fully_decoded_payload(part)
        payload = payload.decode() if isinstance(payload, bytes) else payload
        h.handle_part(None, part.get_content_type(), part.get_filename() or f"part-{i + 1:03d}", payload, 1, dict(part.items()))
    return h.cloud_buf


print(json.dumps([merged(path) for path in sys.argv[1:]], sort_keys=True))
