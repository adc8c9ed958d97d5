"""S3-compatible object storage (AWS S3, MinIO, Ceph RGW, R2) as a densezoo mirror.

Reading: each ``s3://bucket/prefix/<host>/<path>`` candidate is turned into a
short-lived presigned GET and handed to the ordinary HTTP downloader, so resume,
Range segmentation, retries, URL health and hashing are the same code path as
for any mirror, and every signature is redacted like any query string.  Writing:
``mirror build s3://…`` uploads verified store files (multipart for large ones),
skipping objects already there with the same size and recorded md5.

Credentials and endpoint come from the standard AWS chain (environment, shared
config and credentials files, profiles; ``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_S3`` for MinIO/Ceph, which also switches to path-style
addressing).  boto3 is an optional extra: ``pip install 'densezoo[s3]'``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

from ..errors import TransferError, UsageError
from ..urls import redact, valid_host

PRESIGN_SECONDS = 3600           # long enough for a large file's retries and segments
MULTIPART_THRESHOLD = 64 << 20
CHECK_VARIABLES = ("AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE, "
                   "AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3)")


def is_s3(url: str) -> bool:
    return url.startswith("s3://")


def check(url: str) -> bool:
    """A bucket name S3 accepts (3-63 characters of a DNS label set)."""
    bucket = urlsplit(url).netloc
    return 3 <= len(bucket) <= 63 and valid_host(bucket)


def connect(downloader: object = None) -> "Bucket":
    """The resolver for the source table (``sources.py``): one client per fetcher (the
    downloader is not needed: a presigned URL is fetched through it, policy and all)."""
    return Bucket.connect()


def split(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix/key`` -> (bucket, "prefix/key")."""
    parts = urlsplit(url)
    return parts.netloc, parts.path.lstrip("/")


def endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


@dataclass
class Bucket:
    """A boto3 S3 client set up from the standard AWS chain (built once per Zoo)."""

    client: object

    @classmethod
    def connect(cls) -> "Bucket":
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise UsageError("an s3:// mirror needs boto3, which is not installed",
                             hint="pip install 'densezoo[s3]'") from None
        url = endpoint()
        config = Config(signature_version="s3v4", retries={"max_attempts": 2},
                        s3={"addressing_style": "path" if url else "auto"})
        return cls(boto3.session.Session().client("s3", endpoint_url=url, config=config))

    def request_url(self, url: str) -> str:
        return self.presign(url)

    def presign(self, url: str) -> str:
        """A presigned https GET for an s3:// URL (no request is made to sign it)."""
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = split(url)
        try:
            return self.client.generate_presigned_url(  # type: ignore[attr-defined]
                "get_object", Params={"Bucket": bucket, "Key": key},
                ExpiresIn=PRESIGN_SECONDS)
        except (BotoCoreError, ClientError) as e:
            raise TransferError(url, f"cannot sign a request ({e}); check {CHECK_VARIABLES}",
                                retryable=False) from None

    def head(self, bucket: str, key: str) -> dict | None:

        try:
            with _errors(f"s3://{bucket}/{key}"):
                return self.client.head_object(Bucket=bucket, Key=key)  # type: ignore
        except TransferError as e:
            if e.status == 404:
                return None
            raise

    def upload(self, src: Path, bucket: str, key: str, *, md5: str, sha256: str | None,
               size: int) -> bool:
        """Upload unless an object of the same size and recorded md5 is there; True if sent."""
        from boto3.s3.transfer import TransferConfig

        old = self.head(bucket, key)
        if old and old.get("ContentLength") == size and \
                (old.get("Metadata") or {}).get("md5") == md5:
            return False
        meta = {"md5": md5, **({"sha256": sha256} if sha256 else {})}
        with _errors(f"s3://{bucket}/{key}"):
            self.client.upload_file(  # type: ignore[attr-defined]
                str(src), bucket, key, ExtraArgs={"Metadata": meta},
                Config=TransferConfig(multipart_threshold=MULTIPART_THRESHOLD))
        return True

    def put_text(self, bucket: str, key: str, text: str, content_type: str) -> None:
        with _errors(f"s3://{bucket}/{key}"):
            self.client.put_object(  # type: ignore[attr-defined]
                Bucket=bucket, Key=key, Body=text.encode("utf-8"), ContentType=content_type)


@contextlib.contextmanager
def _errors(url: str) -> Iterator[None]:
    """boto3's errors as densezoo's: one line, the usual exit code, the variable to check."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    try:
        yield
    except ClientError as e:
        code = str(e.response.get("Error", {}).get("Code", ""))
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
            status = 404
        raise explain(url, TransferError(url, f"{code or 'error'} from the bucket",
                                         status=status, retryable=False)) from None
    except S3UploadFailedError as e:
        status = 403 if "403" in str(e) or "AccessDenied" in str(e) or "Forbidden" in str(e) \
            else None
        raise explain(url, TransferError(url, str(e).splitlines()[0], status=status,
                                         retryable=False)) from None
    except EndpointConnectionError:
        raise explain(url, TransferError(url, "cannot connect to the endpoint",
                                         retryable=False)) from None
    except BotoCoreError as e:
        raise explain(url, TransferError(url, str(e), retryable=False)) from None


def explain(url: str, e: TransferError) -> TransferError:
    """The same failure, with the AWS variable to check for an s3:// mirror."""
    if e.status == 403:
        why = f"access denied by the bucket: check {CHECK_VARIABLES}"
    elif e.status == 404:
        why = "not in the bucket (or no such bucket: check the bucket and prefix in " \
              "DENSEZOO_MIRROR)"
    elif e.status is None:
        why = f"{e.reason}; is the endpoint up? check AWS_ENDPOINT_URL"
    else:
        why = e.reason
    return TransferError(redact(url), why, status=e.status, retryable=e.retryable,
                         kind=e.kind)
