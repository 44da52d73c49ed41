"""A small tus 1.0.0 client over Flask's test client, for the upload tests."""

import base64

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"


def metadata(**pairs):
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


class Tus:
    def __init__(self, client, token):
        self.client, self.token = client, token

    def create(self, length, **meta):
        headers = {**TUS, "Upload-Length": str(length)}
        if meta:
            headers["Upload-Metadata"] = metadata(**meta)
        return self.client.post(f"/r/{self.token}/uploads", headers=headers)

    def url(self, upload_id):
        return f"/r/{self.token}/uploads/{upload_id}"

    def head(self, upload_id):
        return self.client.head(self.url(upload_id), headers=TUS)

    def patch(self, upload_id, offset, data, content_type=OCTETS, **headers):
        return self.client.patch(
            self.url(upload_id),
            data=data,
            headers={**TUS, "Upload-Offset": str(offset), "Content-Type": content_type, **headers},
        )

    def delete(self, upload_id):
        return self.client.delete(self.url(upload_id), headers=TUS)

    def upload(self, data, chunk=64 * 1024, filetype="video/webm", filename="recording.webm"):
        """Create and send the whole file in chunks; returns the upload id."""
        created = self.create(len(data), filetype=filetype, filename=filename)
        assert created.status_code == 201, created.get_data(as_text=True)
        upload_id = created.headers["Location"].rsplit("/", 1)[-1]
        for offset in range(0, len(data), chunk):
            sent = self.patch(upload_id, offset, data[offset : offset + chunk])
            assert sent.status_code == 204, sent.get_data(as_text=True)
            assert sent.headers["Upload-Offset"] == str(min(offset + chunk, len(data)))
        return upload_id
