"""boto3 (unmodified) against stsgate: assume_role_with_web_identity, then get_caller_identity with the keys.

Usage: boto3_roundtrip.py ENDPOINT ROLE_ARN TOKEN_FILE; prints one JSON object.
"""
import json
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, role_arn, token_file = sys.argv[1:4]
config = Config(retries={"max_attempts": 1})
with open(token_file) as f:
    token = f.read().strip()

anonymous = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1", config=config,
                         aws_access_key_id="unused", aws_secret_access_key="unused")
out = anonymous.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="boto3", WebIdentityToken=token)
creds = out["Credentials"]

signed = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1", config=config,
                      aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                      aws_session_token=creds["SessionToken"])
who = signed.get_caller_identity()

tampered = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1", config=config,
                        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key="x" + creds["SecretAccessKey"][1:],
                        aws_session_token=creds["SessionToken"])
try:
    tampered.get_caller_identity()
    tampered_code = None
except ClientError as err:
    tampered_code = err.response["Error"]["Code"]

print(json.dumps({
    "access_key_id": creds["AccessKeyId"],
    "assumed_arn": out["AssumedRoleUser"]["Arn"],
    "caller_arn": who["Arn"],
    "account": who["Account"],
    "tampered_code": tampered_code,
}))
