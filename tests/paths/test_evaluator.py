"""The IAM policy evaluator against AWS's documented rules, mostly on the documentation's own examples."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pgf_backup.paths.evaluator import Match, Principal, Request, Value, covers, decide, evaluate_document

ACCOUNT = "111122223333"
OTHER = "444455556666"
ROLE = Principal(arn=f"arn:aws:iam::{ACCOUNT}:role/pgf-app")
OTHER_ROLE = Principal(arn=f"arn:aws:iam::{OTHER}:role/pgf-backup-copy")
BACKUP = Principal(service="backup.amazonaws.com")


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    """A policy document holding the given statements."""
    return {"Version": "2012-10-17", "Statement": list(statements)}


def request(action: str, resource: str = "*", principal: Principal = ROLE, /, **context: Value) -> Request:
    """A request; condition keys are given as keyword arguments with ':' spelled '__'."""
    return Request(principal, action, resource, {k.replace("__", ":"): v for k, v in context.items()})


def effect(document: dict[str, Any], req: Request) -> str | None:
    """The effect a document has on a request."""
    return evaluate_document(document, req).effect


# --- ...IfExists ----------------------------------------------------------------------------------------------

RUN_INSTANCES = policy(
    {
        "Sid": "RunInstance",
        "Effect": "Allow",
        "Action": "ec2:RunInstances",
        "Resource": "*",
        "Condition": {"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}},
    }
)


@pytest.mark.parametrize(
    ("instance_type", "expected"),
    [("t2.micro", "Allow"), ("m3.large", "Allow"), ("m5.large", None), (None, "Allow")],
)
def test_if_exists_checks_a_present_key_and_passes_an_absent_one(
    instance_type: str | None, expected: str | None
) -> None:
    """The condition-operators page's RunInstances example: StringLikeIfExists on ec2:InstanceType.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_IfExists
    "If the resource being checked has an ec2:InstanceType condition key, then allow the action only if the key value
    begins with t1., t2., or m3. ... If the resource being checked does not have that condition key, then don't worry
    about it."
    """
    context = {} if instance_type is None else {"ec2:InstanceType": instance_type}
    assert effect(RUN_INSTANCES, Request(ROLE, "ec2:RunInstances", "arn:aws:ec2:::image/ami-1", context)) == expected


def test_plain_operator_on_an_absent_key_is_false() -> None:
    """The same page's THISPOLICYDOESNOTWORK: plain StringLike fails on resources without ec2:InstanceType."""
    doc = policy(
        {
            "Sid": "THISPOLICYDOESNOTWORK",
            "Effect": "Allow",
            "Action": "ec2:RunInstances",
            "Resource": "*",
            "Condition": {"StringLike": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}},
        }
    )
    assert effect(doc, request("ec2:RunInstances")) is None
    assert effect(doc, request("ec2:RunInstances", ec2__InstanceType="t2.micro")) == "Allow"


# --- Negated operators on absent keys: the PutObject without an encryption header --------------------------------

BUCKET = "arn:aws:s3:::pgf-documents-prod"


def sse_deny(operator: str) -> dict[str, Any]:
    """A bucket policy denying PutObject unless it states SSE-KMS, written with `operator`."""
    return policy(
        {
            "Sid": "DenyWrongEncryption",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": f"{BUCKET}/*",
            "Condition": {operator: {"s3:x-amz-server-side-encryption": "aws:kms"}},
        },
        {"Sid": "AllowAccount", "Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "s3:*", "Resource": "*"},
    )


@pytest.mark.parametrize("operator", ["StringNotEquals", "StringNotEqualsIfExists"])
def test_negated_operator_denies_a_put_without_the_encryption_header(operator: str) -> None:
    """A PutObject that sends no x-amz-server-side-encryption header is caught by both negated forms.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
    "If the policy condition requires that the key is not matched, such as StringNotLike or ArnNotLike, and the right
    key is not present, the condition is true", and for IfExists: "If you are using an "Effect": "Deny" element with a
    negated condition operator like StringNotEqualsIfExists, the request is still denied even if the tag is missing."
    This is the defect being fixed: a writer relying on the bucket's default encryption sends no header and is denied.
    """
    put = request("s3:PutObject", f"{BUCKET}/doc.pdf")
    match = evaluate_document(sse_deny(operator), put)
    assert match == Match("Deny", "DenyWrongEncryption")
    decision = decide(
        put,
        resource_account=ACCOUNT,
        resource_policy=sse_deny(operator),
        resource_policy_name="bucket policy pgf-documents-prod",
    )
    assert not decision.allowed
    assert decision.reason == "denied by statement DenyWrongEncryption of bucket policy pgf-documents-prod"
    assert decision.statement == "bucket policy pgf-documents-prod:DenyWrongEncryption"


@pytest.mark.parametrize("operator", ["StringNotEquals", "StringNotEqualsIfExists"])
@pytest.mark.parametrize(("header", "expected"), [("aws:kms", "Allow"), ("AES256", "Deny")])
def test_negated_operator_on_a_present_header_compares_it(operator: str, header: str, expected: str) -> None:
    """With the header present, both forms deny only a value other than aws:kms."""
    put = request("s3:PutObject", f"{BUCKET}/doc.pdf", **{"s3__x-amz-server-side-encryption": header})
    assert effect(sse_deny(operator), put) == expected


def test_arn_not_like_on_an_absent_key_is_true() -> None:
    """The condition-operators page: ArnNotLike with the key absent is true, so the Deny applies."""
    doc = policy(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sns:Publish",
            "Resource": "*",
            "Condition": {"ArnNotLike": {"aws:SourceArn": "arn:aws:backup:*:111122223333:backup-vault:*"}},
        }
    )
    assert effect(doc, request("sns:Publish", "*", BACKUP)) == "Deny"
    vault = "arn:aws:backup:eu-west-1:111122223333:backup-vault:pgf"
    assert effect(doc, request("sns:Publish", "*", BACKUP, aws__SourceArn=vault)) is None


# --- Null -------------------------------------------------------------------------------------------------------

UNENCRYPTED_SCP = policy(
    {
        "Effect": "Deny",
        "Action": "s3:PutObject",
        "Resource": "*",
        "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}},
    },
    {
        "Effect": "Deny",
        "Action": "s3:PutObject",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "AES256"}},
    },
)


def test_null_true_matches_only_an_absent_key() -> None:
    """AWS Organizations' "Prevent Amazon S3 unencrypted object uploads" SCP (Null true on the header).

    https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps_examples_s3.html
    """
    only_null = policy(UNENCRYPTED_SCP["Statement"][0])
    assert evaluate_document(only_null, request("s3:PutObject", "arn:aws:s3:::b/k")) == Match("Deny", "statement 1")
    assert effect(only_null, request("s3:PutObject", **{"s3__x-amz-server-side-encryption": "AES256"})) is None
    both = request("s3:PutObject", **{"s3__x-amz-server-side-encryption": "aws:kms"})
    assert evaluate_document(UNENCRYPTED_SCP, both) == Match("Deny", "statement 2")


def test_null_false_matches_only_a_present_non_empty_key() -> None:
    """Null false means "the key exists and its value is not null" (condition-operators page); an empty set is null."""
    doc = policy({"Effect": "Allow", "Action": "iam:TagRole", "Condition": {"Null": {"aws:TagKeys": "false"}}})
    assert effect(doc, request("iam:TagRole", aws__TagKeys=["team"])) == "Allow"
    assert effect(doc, request("iam:TagRole", aws__TagKeys=[])) is None
    assert effect(doc, request("iam:TagRole")) is None


# --- ForAnyValue / ForAllValues ---------------------------------------------------------------------------------

DENY_RESTRICTED_TAGS = policy(
    {
        "Sid": "DenyRestrictedTags",
        "Effect": "Deny",
        "Action": ["iam:Tag*", "iam:UnTag*"],
        "Resource": ["*"],
        "Condition": {"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}},
    }
)


@pytest.mark.parametrize(
    ("tag_keys", "expected"),
    [(["key1:legal"], None), (["key1:hr", "key1:personnel"], None), (["key2:audit"], "Deny"), (None, "Deny")],
)
def test_for_all_values_table_from_the_multivalued_examples(tag_keys: list[str] | None, expected: str | None) -> None:
    """The "Deny a single policy condition value for a multivalued context key" table, row by row.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition_examples-multi-valued-context-keys.html
    key1:legal -> no match; key1:hr, key1:personnel -> no match; key2:audit -> match; no aws:TagKeys -> match
    ("The ForAllValues set operator also returns true if there are no context keys in the request").
    """
    context = {} if tag_keys is None else {"aws:TagKeys": tag_keys}
    assert effect(DENY_RESTRICTED_TAGS, Request(ROLE, "iam:TagRole", "arn:aws:iam::1:role/x", context)) == expected


THREAD = "arn:aws:dynamodb:eu-west-1:111122223333:table/Thread"


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [(["PostDateTime", "Message"], "Allow"), (["PostDateTime", "UserName"], None), ([], "Allow"), (None, "Allow")],
)
def test_for_all_values_needs_every_request_value_listed(attributes: list[str] | None, expected: str | None) -> None:
    """The DynamoDB GetItem example: only PostDateTime, Message and Tags may be requested.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html
    PostDateTime and Message -> allowed; PostDateTime and UserName -> "There's no match for UserName, so the condition
    operator returns false"; an empty data set -> "ForAllValues returns true".
    """
    doc = policy(
        {
            "Effect": "Allow",
            "Action": "dynamodb:GetItem",
            "Resource": THREAD,
            "Condition": {
                "ForAllValues:StringLike": {"dynamodb:requestedAttributes": ["PostDateTime", "Message", "Tags"]}
            },
        }
    )
    context = {} if attributes is None else {"dynamodb:requestedAttributes": attributes}
    assert effect(doc, Request(ROLE, "dynamodb:GetItem", THREAD, context)) == expected


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [(["UserName", "Message", "PostDateTime"], "Deny"), (["UserName"], None), ([], None), (None, None)],
)
def test_for_any_value_needs_one_request_value_listed(attributes: list[str] | None, expected: str | None) -> None:
    """The DynamoDB PutItem example: deny if any requested attribute is ID or PostDateTime.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html
    UserName, Message, PostDateTime -> denied; just UserName -> "The condition returns false"; an empty data set ->
    "a condition operator modified by ForAnyValue returns false".
    """
    doc = policy(
        {
            "Effect": "Deny",
            "Action": "dynamodb:PutItem",
            "Resource": THREAD,
            "Condition": {"ForAnyValue:StringLike": {"dynamodb:requestedAttributes": ["ID", "PostDateTime"]}},
        }
    )
    context = {} if attributes is None else {"dynamodb:requestedAttributes": attributes}
    assert effect(doc, Request(ROLE, "dynamodb:PutItem", THREAD, context)) == expected


def test_a_plain_operator_refuses_a_multivalued_key() -> None:
    """ "Multivalued context keys require a condition set operator" (single-vs-multivalued page): no silent guess."""
    doc = policy({"Effect": "Allow", "Action": "iam:TagRole", "Condition": {"StringEquals": {"aws:TagKeys": "a"}}})
    with pytest.raises(ValueError, match="aws:TagKeys"):
        evaluate_document(doc, request("iam:TagRole", aws__TagKeys=["a", "b"]))


# --- NotPrincipal and NotAction ---------------------------------------------------------------------------------

BOB = Principal(arn=f"arn:aws:iam::{OTHER}:user/Bob")


def test_not_principal_with_deny_spares_only_the_listed_user() -> None:
    """The NotPrincipal page's example: everyone but Bob (listed with his account) is denied.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html
    """
    doc = policy(
        {
            "Effect": "Deny",
            "NotPrincipal": {"AWS": [BOB.arn, f"arn:aws:iam::{OTHER}:root"]},
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::BUCKETNAME", "arn:aws:s3:::BUCKETNAME/*"],
        }
    )
    get = "arn:aws:s3:::BUCKETNAME/a"
    assert effect(doc, request("s3:GetObject", get, BOB)) is None
    assert effect(doc, request("s3:GetObject", get, Principal(arn=f"arn:aws:iam::{OTHER}:user/Alice"))) == "Deny"
    assert effect(doc, request("s3:GetObject", get, ROLE)) == "Deny"
    assert effect(doc, request("s3:GetObject", get, BACKUP)) == "Deny"


def test_not_principal_without_the_account_still_denies_the_user() -> None:
    """The same page: without the account ARN, "the policy might deny access to the entire account" - assume it does."""
    doc = policy({"Effect": "Deny", "NotPrincipal": {"AWS": BOB.arn}, "Action": "s3:*", "Resource": "*"})
    assert effect(doc, request("s3:GetObject", "*", BOB)) == "Deny"


def test_not_action_with_deny_and_bool_if_exists() -> None:
    """The NotAction page's DenyAllUsersNotUsingMFA: deny non-IAM actions unless signed in with MFA.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html
    """
    doc = policy(
        {
            "Sid": "DenyAllUsersNotUsingMFA",
            "Effect": "Deny",
            "NotAction": "iam:*",
            "Resource": "*",
            "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
        }
    )
    assert effect(doc, request("s3:GetObject")) == "Deny"
    assert effect(doc, request("s3:GetObject", aws__MultiFactorAuthPresent="false")) == "Deny"
    assert effect(doc, request("s3:GetObject", aws__MultiFactorAuthPresent=True)) is None
    assert effect(doc, request("iam:CreateUser")) is None


def test_not_action_with_allow() -> None:
    """The NotAction page: Allow NotAction s3:DeleteBucket on arn:aws:s3:::* allows everything else on S3."""
    doc = policy({"Effect": "Allow", "NotAction": "s3:DeleteBucket", "Resource": "arn:aws:s3:::*"})
    assert effect(doc, request("s3:GetObject", "arn:aws:s3:::b/k")) == "Allow"
    assert effect(doc, request("s3:DeleteBucket", "arn:aws:s3:::b")) is None


# --- Action and Resource wildcards ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "matches"),
    [
        ("iam:CreateAccessKey", True),
        ("iam:ListAccessKeys", True),
        ("IAM:listaccesskeys", True),
        ("iam:ListUsers", False),
        ("s3:CreateAccessKey", False),
    ],
)
def test_action_wildcards_ignore_case(action: str, matches: bool) -> None:
    """The Action page: "iam:*AccessKey*" and "iam:ListAccessKeys is the same as IAM:listaccesskeys".

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
    """
    doc = policy({"Effect": "Allow", "Action": "iam:*AccessKey*", "Resource": "*"})
    assert (effect(doc, request(action)) == "Allow") is matches


def test_action_single_character_wildcard_and_service_star() -> None:
    """`?` is one character; "s3:*" is every S3 action and no other service's."""
    doc = policy({"Effect": "Allow", "Action": ["kms:?ecrypt", "s3:*"], "Resource": "*"})
    assert effect(doc, request("kms:Decrypt")) == "Allow"
    assert effect(doc, request("kms:ReEncrypt")) is None
    assert effect(doc, request("s3:PutObject")) == "Allow"
    assert effect(doc, request("sns:Publish")) is None


@pytest.mark.parametrize(
    ("pattern", "resource", "matches"),
    [
        ("arn:aws:s3:::my_corporate_bucket/*", "arn:aws:s3:::my_corporate_bucket/a/b.txt", True),
        ("arn:aws:s3:::my_corporate_bucket/*", "arn:aws:s3:::my_corporate_bucket", False),
        ("arn:aws:iam::111122223333:user/Bob", "arn:aws:iam::111122223333:user/bob", False),
        ("arn:aws:iam::111122223333:user/accounting/*", "arn:aws:iam::111122223333:user/accounting/ann", True),
        ("arn:aws:backup:*:111122223333:backup-vault:*", "arn:aws:backup:eu-west-1:111122223333:backup-vault:v", True),
        ("arn:aws:backup:eu-*-1:111122223333:*", "arn:aws:backup:eu-west-1:111122223333:backup-vault:v", True),
        ("arn:aws:backup:eu-*-1:111122223333:*", "arn:aws:backup:eu-west:9-1:111122223333:backup-vault:v", False),
        ("arn:aws:kms:eu-west-?:*:key/*", "arn:aws:kms:eu-west-1:111122223333:key/k", True),
        ("*", "arn:aws:kms:eu-west-1:111122223333:key/k", True),
    ],
)
def test_resource_wildcards_are_case_sensitive_and_segment_bound(pattern: str, resource: str, matches: bool) -> None:
    """The Resource page: * and ? within segments, a segment-ending * may cross colons, names are case sensitive.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
    """
    doc = policy({"Effect": "Allow", "Action": "*", "Resource": pattern})
    assert (effect(doc, request("s3:GetObject", resource)) == "Allow") is matches


def test_not_resource_matches_every_other_resource() -> None:
    """NotResource applies to every resource except those listed."""
    doc = policy({"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::pgf-*"})
    assert effect(doc, request("s3:GetObject", "arn:aws:s3:::pgf-documents-prod")) is None
    assert effect(doc, request("s3:GetObject", "arn:aws:s3:::elsewhere")) == "Deny"


# --- Bool, numeric, date, IP, ARN -------------------------------------------------------------------------------

SECURE_TRANSPORT = policy(
    {
        "Sid": "BooleanExample",
        "Action": "s3:*",
        "Effect": "Deny",
        "Resource": ["arn:aws:s3:::DOC-EXAMPLE-BUCKET", "arn:aws:s3:::DOC-EXAMPLE-BUCKET/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
)


@pytest.mark.parametrize(("secure", "expected"), [(False, "Deny"), ("false", "Deny"), ("FALSE", "Deny"), (True, None)])
def test_bool_compares_true_and_false(secure: Value, expected: str | None) -> None:
    """The condition-operators page's BooleanExample: deny S3 when the request is not over SSL.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_Boolean
    """
    get = request("s3:GetObject", "arn:aws:s3:::DOC-EXAMPLE-BUCKET/k", aws__SecureTransport=secure)
    assert effect(SECURE_TRANSPORT, get) == expected


def test_bool_with_a_json_boolean_in_the_policy() -> None:
    """A policy value written as JSON false reads the same as the string "false"."""
    doc = policy(
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": False}}}
    )
    assert effect(doc, request("s3:GetObject", aws__SecureTransport=False)) == "Deny"
    assert effect(doc, request("s3:GetObject", aws__SecureTransport=True)) is None


@pytest.mark.parametrize(
    ("max_keys", "expected"), [(10, "Allow"), ("5", "Allow"), (10.0, "Allow"), (11, None), (None, None)]
)
def test_numeric_less_than_equals(max_keys: Value | None, expected: str | None) -> None:
    """The condition-operators page: NumericLessThanEquals s3:max-keys "10" lists up to 10 objects.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_Numeric
    """
    doc = policy(
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::example_bucket",
            "Condition": {"NumericLessThanEquals": {"s3:max-keys": "10"}},
        }
    )
    context = {} if max_keys is None else {"s3:max-keys": max_keys}
    assert effect(doc, Request(ROLE, "s3:ListBucket", "arn:aws:s3:::example_bucket", context)) == expected


def test_numeric_not_equals_and_greater_than() -> None:
    """NumericNotEquals is negated (true on an absent key); NumericGreaterThan compares numbers, not text."""
    not_equals = policy({"Effect": "Deny", "Action": "*", "Condition": {"NumericNotEquals": {"backup:Days": [7, 35]}}})
    assert effect(not_equals, request("backup:X")) == "Deny"
    assert effect(not_equals, request("backup:X", backup__Days=35)) is None
    assert effect(not_equals, request("backup:X", backup__Days=30)) == "Deny"
    greater = policy({"Effect": "Allow", "Action": "*", "Condition": {"NumericGreaterThan": {"backup:Days": "9"}}})
    assert effect(greater, request("backup:X", backup__Days="10")) == "Allow"
    assert effect(greater, request("backup:X", backup__Days=9)) is None


def test_date_greater_than() -> None:
    """The condition-operators page: DateGreaterThan aws:TokenIssueTime; absent when using long-term access keys.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_Date
    """
    doc = policy(
        {
            "Effect": "Allow",
            "Action": "iam:*AccessKey*",
            "Resource": f"arn:aws:iam::{ACCOUNT}:user/*",
            "Condition": {"DateGreaterThan": {"aws:TokenIssueTime": "2020-01-01T00:00:01Z"}},
        }
    )
    user = f"arn:aws:iam::{ACCOUNT}:user/ann"
    assert effect(doc, request("iam:ListAccessKeys", user, aws__TokenIssueTime="2020-06-01T00:00:00Z")) == "Allow"
    assert effect(doc, request("iam:ListAccessKeys", user, aws__TokenIssueTime="2019-12-31T23:59:59Z")) is None
    assert effect(doc, request("iam:ListAccessKeys", user, aws__TokenIssueTime=1593561600)) == "Allow"
    assert effect(doc, request("iam:ListAccessKeys", user)) is None


def test_arn_like_checks_each_component_where_string_like_does_not() -> None:
    """The condition-operators page: arn:aws:someservice:*:111122223333:finance/* vs a value smuggling the account.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_ARN
    "With a StringLike condition, the match succeeds ... With an ArnLike condition ... the match fails."
    """
    pattern = "arn:aws:someservice:*:111122223333:finance/*"
    value = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"
    for operator, expected in (("StringLike", "Allow"), ("ArnLike", None), ("ArnEquals", None)):
        doc = policy({"Effect": "Allow", "Action": "*", "Condition": {operator: {"aws:SourceArn": pattern}}})
        assert effect(doc, request("sqs:SendMessage", aws__SourceArn=value)) == expected, operator
    doc = policy({"Effect": "Allow", "Action": "*", "Condition": {"ArnLike": {"aws:SourceArn": pattern}}})
    good = "arn:aws:someservice:us-east-2:111122223333:finance/document.txt"
    assert effect(doc, request("sqs:SendMessage", aws__SourceArn=good)) == "Allow"


def test_ip_address_and_case_insensitive_key_names() -> None:
    """Key names ignore case: "including the aws:SourceIP condition key is equivalent to testing for AWS:SourceIp".

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html
    """
    doc = policy(
        {
            "Effect": "Allow",
            "Action": "*",
            "Resource": "*",
            "Condition": {"IpAddress": {"aws:SourceIP": "203.0.113.0/24"}},
        }
    )
    assert effect(doc, Request(ROLE, "s3:GetObject", "*", {"AWS:SourceIp": "203.0.113.7"})) == "Allow"
    assert effect(doc, Request(ROLE, "s3:GetObject", "*", {"aws:sourceip": "198.51.100.7"})) is None


def test_values_keep_their_case_unless_the_operator_ignores_it() -> None:
    """The Condition page: StringEquals johndoe refuses JohnDoe; StringEqualsIgnoreCase accepts both."""
    exact = policy({"Effect": "Allow", "Action": "*", "Condition": {"StringEquals": {"aws:username": "johndoe"}}})
    loose = policy(
        {"Effect": "Allow", "Action": "*", "Condition": {"StringEqualsIgnoreCase": {"aws:username": "johndoe"}}}
    )
    assert effect(exact, request("s3:GetObject", aws__username="JohnDoe")) is None
    assert effect(exact, request("s3:GetObject", aws__username="johndoe")) == "Allow"
    assert effect(loose, request("s3:GetObject", aws__username="JohnDoe")) == "Allow"


# --- Multiple values, keys and operators ------------------------------------------------------------------------


def test_values_of_one_key_are_or_ed_and_nor_ed_when_negated() -> None:
    """Several values for one key are OR-ed; under a negated operator they are NOR-ed.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html
    "If a single negated matching condition operator includes multiple values for a context key, those values are
    evaluated using a logical NOR."
    """
    positive = policy(
        {
            "Effect": "Allow",
            "Action": "*",
            "Condition": {"StringEquals": {"aws:PrincipalTag/role": ["audit", "security"]}},
        }
    )
    negated = policy(
        {
            "Effect": "Allow",
            "Action": "*",
            "Condition": {"StringNotEquals": {"aws:PrincipalTag/role": ["audit", "security"]}},
        }
    )
    for role, in_list in (("audit", True), ("security", True), ("dev", False)):
        req = request("s3:GetObject", **{"aws__PrincipalTag/role": role})
        assert (effect(positive, req) == "Allow") is in_list
        assert (effect(negated, req) == "Allow") is not in_list


def test_keys_and_operators_are_and_ed() -> None:
    """Several keys under one operator, and several operators, must all hold (same page)."""
    doc = policy(
        {
            "Effect": "Allow",
            "Action": "*",
            "Condition": {
                "StringEquals": {"aws:PrincipalTag/department": "finance", "aws:PrincipalTag/role": "audit"},
                "ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/pgf-*"},
            },
        }
    )
    tags = {"aws:PrincipalTag/department": "finance", "aws:PrincipalTag/role": "audit"}
    assert effect(doc, Request(ROLE, "s3:GetObject", "*", tags)) == "Allow"
    assert effect(doc, Request(ROLE, "s3:GetObject", "*", {**tags, "aws:PrincipalTag/role": "dev"})) is None
    other = Principal(arn=f"arn:aws:iam::{ACCOUNT}:role/ops")
    assert effect(doc, Request(other, "s3:GetObject", "*", tags)) is None


# --- Principals and derived keys --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("element", "principal", "expected"),
    [
        ("*", ROLE, Match("Allow", "S")),
        ({"AWS": "*"}, BACKUP, Match("Allow", "S")),
        ({"AWS": ACCOUNT}, ROLE, Match("Allow", "S", via_account_root=True)),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, ROLE, Match("Allow", "S", via_account_root=True)),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, Principal(arn=f"arn:aws:iam::{ACCOUNT}:root"), Match("Allow", "S")),
        ({"AWS": [OTHER, ROLE.arn]}, ROLE, Match("Allow", "S")),
        ({"AWS": OTHER}, ROLE, Match(None, "")),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:role/other"}, ROLE, Match(None, "")),
        ({"Service": ["sns.amazonaws.com", "backup.amazonaws.com"]}, BACKUP, Match("Allow", "S")),
        ({"Service": "backup.amazonaws.com"}, ROLE, Match(None, "")),
        ({"AWS": ACCOUNT}, BACKUP, Match(None, "")),
    ],
)
def test_principal_forms(element: Any, principal: Principal, expected: Match) -> None:
    """The Principal page: "*", accounts (ARN or bare id, matching every principal of the account), roles, services.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
    """
    doc = policy({"Sid": "S", "Effect": "Allow", "Principal": element, "Action": "*", "Resource": "*"})
    assert evaluate_document(doc, request("kms:Decrypt", "*", principal)) == expected


def test_a_direct_grant_is_reported_before_one_through_the_account() -> None:
    """With both an account grant and a role grant, the match names the role grant (it needs no IAM policy)."""
    doc = policy(
        {"Sid": "Account", "Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "*", "Resource": "*"},
        {"Sid": "Role", "Effect": "Allow", "Principal": {"AWS": ROLE.arn}, "Action": "*", "Resource": "*"},
    )
    assert evaluate_document(doc, request("kms:Decrypt")) == Match("Allow", "Role")


def test_a_partial_principal_wildcard_is_refused() -> None:
    """The Principal page: "You cannot use a wildcard to match part of a principal name or ARN." """
    doc = policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/*"}, "Action": "*"})
    with pytest.raises(ValueError, match="partial wildcard"):
        evaluate_document(doc, request("kms:Decrypt"))


def test_principal_arn_is_derived_for_iam_principals() -> None:
    """The Principal page's UsePrincipalArnInsteadOfNotPrincipalWithDeny example, on the derived aws:PrincipalArn."""
    user = Principal(arn=f"arn:aws:iam::{OTHER}:user/user-name")
    doc = policy(
        {
            "Sid": "UsePrincipalArnInsteadOfNotPrincipalWithDeny",
            "Effect": "Deny",
            "Action": "s3:*",
            "Principal": "*",
            "Resource": ["arn:aws:s3:::BUCKETNAME/*", "arn:aws:s3:::BUCKETNAME"],
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": user.arn}},
        }
    )
    assert effect(doc, request("s3:GetObject", "arn:aws:s3:::BUCKETNAME", user)) is None
    assert effect(doc, request("s3:GetObject", "arn:aws:s3:::BUCKETNAME", ROLE)) == "Deny"
    # An explicit aws:PrincipalArn in the request context wins over the derived one.
    assert effect(doc, request("s3:GetObject", "arn:aws:s3:::BUCKETNAME", ROLE, aws__PrincipalArn=user.arn)) is None


def test_principal_account_and_service_name_are_derived() -> None:
    """aws:PrincipalAccount for IAM principals; aws:PrincipalServiceName for service principals; nothing else."""
    doc = policy(
        {
            "Sid": "Acct",
            "Effect": "Allow",
            "Action": "*",
            "Condition": {"StringEquals": {"aws:PrincipalAccount": OTHER}},
        },
        {
            "Sid": "Svc",
            "Effect": "Allow",
            "Action": "*",
            "Condition": {"StringEquals": {"aws:PrincipalServiceName": "backup.amazonaws.com"}},
        },
        {"Sid": "Src", "Effect": "Allow", "Action": "*", "Condition": {"Null": {"aws:SourceAccount": "false"}}},
    )
    assert evaluate_document(doc, request("x:Y", "*", OTHER_ROLE)) == Match("Allow", "Acct")
    assert evaluate_document(doc, request("x:Y", "*", BACKUP)) == Match("Allow", "Svc")
    assert evaluate_document(doc, request("x:Y", "*", ROLE)) == Match(None, "")


def test_service_principal_from_the_sqs_arn_equals_example() -> None:
    """The condition-operators page: SNS may send to the queue only on behalf of the named topic.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_ARN
    """
    queue = "arn:aws:sqs:eu-west-1:123456789012:QUEUE-ID"
    topic = "arn:aws:sns:eu-west-1:123456789012:TOPIC-ID"
    doc = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "123456789012"},
            "Action": "SQS:SendMessage",
            "Resource": queue,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
        }
    )
    user = Principal(arn="arn:aws:iam::123456789012:user/ann")
    assert evaluate_document(doc, request("sqs:SendMessage", queue, user, aws__SourceArn=topic)) == Match(
        "Allow", "statement 1", via_account_root=True
    )
    assert effect(doc, request("sqs:SendMessage", queue, user)) is None


def test_a_statement_without_principal_applies_to_the_caller() -> None:
    """The Principal page: in an identity-based policy "the principal is implicitly the identity" it is attached to."""
    doc = policy({"Sid": "Own", "Effect": "Allow", "Action": "backup:StartCopyJob", "Resource": "*"})
    assert evaluate_document(doc, request("backup:StartCopyJob", "*", OTHER_ROLE)) == Match("Allow", "Own")


def test_a_trust_policy_without_resource_applies() -> None:
    """A role trust policy has no Resource: the statement covers the role it is attached to."""
    trust = json.dumps(
        policy({"Effect": "Allow", "Principal": {"Service": "backup.amazonaws.com"}, "Action": "sts:AssumeRole"})
    )
    role = f"arn:aws:iam::{ACCOUNT}:role/pgf-backup"
    assert evaluate_document(trust, request("sts:AssumeRole", role, BACKUP)) == Match("Allow", "statement 1")
    assert evaluate_document(trust, request("sts:AssumeRole", role, ROLE)) == Match(None, "")


# --- Deny beats Allow, and decide() ----------------------------------------------------------------------------

VAULT = f"arn:aws:backup:eu-west-1:{ACCOUNT}:backup-vault:pgf-prod"


def test_explicit_deny_beats_allow_in_any_order() -> None:
    """An explicit deny overrides an explicit allow, whichever statement comes first.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html
    """
    allow = {"Sid": "AllowAll", "Effect": "Allow", "Principal": "*", "Action": "backup:*", "Resource": "*"}
    deny = {
        "Sid": "DenyDelete",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "backup:DeleteRecoveryPoint",
        "Resource": "*",
    }
    for doc in (policy(allow, deny), policy(deny, allow)):
        assert evaluate_document(doc, request("backup:DeleteRecoveryPoint", VAULT)) == Match("Deny", "DenyDelete")
        decision = decide(
            request("backup:DeleteRecoveryPoint", VAULT),
            resource_account=ACCOUNT,
            resource_policy=doc,
            resource_policy_name="vault policy pgf-prod",
        )
        assert (decision.allowed, decision.statement) == (False, "vault policy pgf-prod:DenyDelete")
        assert effect(doc, request("backup:StartRestoreJob", VAULT)) == "Allow"


COPY_POLICY = policy(
    {
        "Sid": "AllowCopyFromWorkloads",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{OTHER}:role/pgf-backup-copy"},
        "Action": "backup:CopyIntoBackupVault",
        "Resource": "*",
    }
)


@pytest.mark.parametrize(
    ("resource_policy", "identity_allows", "allowed"),
    [(COPY_POLICY, True, True), (COPY_POLICY, False, False), (None, True, False), (policy(), True, False)],
)
def test_cross_account_needs_both_sides(resource_policy: Any, identity_allows: bool, allowed: bool) -> None:
    """A cross-account request needs the resource policy and the caller's identity policy.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html
    """
    copy = request("backup:CopyIntoBackupVault", VAULT, OTHER_ROLE)
    decision = decide(
        copy,
        resource_account=ACCOUNT,
        resource_policy=resource_policy,
        resource_policy_name="vault policy pgf-prod",
        identity_allows=identity_allows,
    )
    assert decision.allowed is allowed
    if allowed:
        assert decision.statement == "vault policy pgf-prod:AllowCopyFromWorkloads"
    elif identity_allows:
        assert decision.reason == f"no statement of vault policy pgf-prod admits account {OTHER} ({OTHER_ROLE.arn})"
        assert decision.statement == ""


@pytest.mark.parametrize(
    ("resource_policy", "identity_allows", "allowed"),
    [
        (None, True, True),
        (None, False, False),
        (COPY_POLICY, False, False),
        (
            policy({"Sid": "Mine", "Effect": "Allow", "Principal": {"AWS": ROLE.arn}, "Action": "*", "Resource": "*"}),
            False,
            True,
        ),
    ],
)
def test_same_account_needs_either_side(resource_policy: Any, identity_allows: bool, allowed: bool) -> None:
    """Within one account, either the identity policy or the resource policy suffices.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html
    "If either the identity-based policy or the resource-based policy within the same account allows the request and
    the other doesn't, the request is still allowed."
    """
    restore = request("backup:StartRestoreJob", VAULT)
    decision = decide(
        restore, resource_account=ACCOUNT, resource_policy=resource_policy, identity_allows=identity_allows
    )
    assert decision.allowed is allowed


def test_same_account_grant_to_the_account_needs_iam() -> None:
    """A grant to the account delegates to its IAM policies (Principal page: account principals)."""
    doc = policy({"Sid": "Acct", "Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "*", "Resource": "*"})
    restore = request("backup:StartRestoreJob", VAULT)
    assert decide(restore, resource_account=ACCOUNT, resource_policy=doc, identity_allows=True).allowed
    assert not decide(restore, resource_account=ACCOUNT, resource_policy=doc, identity_allows=False).allowed


KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd"
DEFAULT_KEY_POLICY = policy(
    {
        "Sid": "Enable IAM policies",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
)


def test_kms_root_statement_delegates_to_iam() -> None:
    """The default key policy's root statement only lets IAM policies grant access.

    https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
    "When the principal in a key policy statement is the account principal, the policy statement doesn't give any IAM
    users or roles permission to use the KMS key. Instead, it allows the account to use IAM policies to delegate".
    """
    decrypt = request("kms:Decrypt", KEY)
    without = decide(
        decrypt,
        resource_account=ACCOUNT,
        resource_policy=DEFAULT_KEY_POLICY,
        resource_policy_name="key policy pgf-prod",
        identity_allows=False,
        key_policy=True,
    )
    assert not without.allowed
    assert without.statement == ""
    assert "Enable IAM policies" in without.reason
    with_iam = decide(
        decrypt,
        resource_account=ACCOUNT,
        resource_policy=DEFAULT_KEY_POLICY,
        resource_policy_name="key policy pgf-prod",
        key_policy=True,
    )
    assert with_iam.allowed
    assert with_iam.statement == "key policy pgf-prod:Enable IAM policies"


def test_kms_named_role_needs_no_iam_in_the_same_account() -> None:
    """A key policy naming the role allows it by itself ("You can use the key policy alone to control access").

    https://docs.aws.amazon.com/kms/latest/developerguide/control-access.html
    """
    doc = policy(
        {"Sid": "Users", "Effect": "Allow", "Principal": {"AWS": ROLE.arn}, "Action": "kms:Decrypt", "Resource": "*"}
    )
    decision = decide(
        request("kms:Decrypt", KEY),
        resource_account=ACCOUNT,
        resource_policy=doc,
        identity_allows=False,
        key_policy=True,
    )
    assert decision.allowed


def test_kms_needs_the_key_policy_even_when_iam_allows() -> None:
    """Unlike other resource policies, a key policy does not "automatically give permission to the account"."""
    doc = policy(
        {
            "Sid": "Admins",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/admin"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    decision = decide(
        request("kms:Decrypt", KEY),
        resource_account=ACCOUNT,
        resource_policy=doc,
        resource_policy_name="key policy X",
        key_policy=True,
    )
    assert not decision.allowed
    assert decision.reason == f"no statement of key policy X admits account {ACCOUNT} ({ROLE.arn})"


@pytest.mark.parametrize("identity_allows", [True, False])
def test_kms_cross_account_needs_iam_even_for_a_named_role(identity_allows: bool) -> None:
    """Cross-account KMS use needs the key policy and an IAM policy in the external account.

    https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html
    """
    doc = policy(
        {
            "Sid": "Copy",
            "Effect": "Allow",
            "Principal": {"AWS": OTHER_ROLE.arn},
            "Action": "kms:Decrypt",
            "Resource": "*",
        }
    )
    decision = decide(
        request("kms:Decrypt", KEY, OTHER_ROLE),
        resource_account=ACCOUNT,
        resource_policy=doc,
        identity_allows=identity_allows,
        key_policy=True,
    )
    assert decision.allowed is identity_allows


def test_service_principal_needs_the_resource_policy() -> None:
    """A service principal has no identity policy here: only the topic policy can let it publish."""
    topic = f"arn:aws:sns:eu-west-1:{ACCOUNT}:pgf-backup-events"
    publish = request("sns:Publish", topic, BACKUP)
    allow = policy(
        {
            "Sid": "AllowBackup",
            "Effect": "Allow",
            "Principal": {"Service": "backup.amazonaws.com"},
            "Action": "SNS:Publish",
            "Resource": topic,
        }
    )
    assert decide(publish, resource_account=ACCOUNT, resource_policy=allow).allowed
    for missing in (None, policy()):
        decision = decide(
            publish,
            resource_account=ACCOUNT,
            resource_policy=missing,
            resource_policy_name="topic policy t",
            identity_allows=True,
        )
        assert not decision.allowed
        assert decision.reason == "no statement of topic policy t admits service backup.amazonaws.com"


# --- Refusals ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operator",
    ["StringEqual", "stringequals", "ForAnyValues:StringLike", "NullIfExists", "ForAllValues:Null", "IfExists"],
)
def test_an_unknown_operator_raises_naming_it(operator: str) -> None:
    """A misspelt operator must not pass silently (it would disable a Deny); even where the principal does not match."""
    doc = policy(
        {
            "Effect": "Deny",
            "Principal": {"AWS": OTHER},
            "Action": "*",
            "Resource": "*",
            "Condition": {operator: {"k": "v"}},
        }
    )
    with pytest.raises(ValueError, match=operator):
        evaluate_document(doc, request("s3:PutObject"))


def test_malformed_documents_and_principals_raise() -> None:
    """Shapes AWS refuses are refused here too."""
    with pytest.raises(ValueError, match="Action or NotAction"):
        evaluate_document(policy({"Effect": "Allow", "Resource": "*"}), request("s3:GetObject"))
    with pytest.raises(ValueError, match="Effect"):
        evaluate_document(policy({"Effect": "allow", "Action": "*"}), request("s3:GetObject"))
    with pytest.raises(ValueError, match="Statement"):
        evaluate_document({"Version": "2012-10-17"}, request("s3:GetObject"))
    with pytest.raises(ValueError, match="exactly one"):
        Principal()
    with pytest.raises(ValueError, match="12-digit"):
        Principal(arn="arn:aws:iam::role/x")
    with pytest.raises(ValueError, match="12 digits"):
        decide(request("s3:GetObject"), resource_account="1234", resource_policy=None)


def test_principal_account() -> None:
    """A principal's account is its ARN's account; a service has none."""
    assert ROLE.account == ACCOUNT
    assert BACKUP.account == ""
    assert Principal(arn=f"arn:aws:sts::{OTHER}:assumed-role/r/s").account == OTHER


def test_covers_weighs_principal_action_and_resource_but_not_conditions() -> None:
    """For a live key policy read by preflight: which statements reach a request, whatever its condition keys."""
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": "backup.ca-central-1.amazonaws.com"}},
    }
    root = Principal(arn=f"arn:aws:iam::{OTHER}:root")
    key = f"arn:aws:kms:ca-central-1:{ACCOUNT}:key/k"
    assert covers(statement, Request(root, "kms:GenerateDataKeyWithoutPlaintext", key))
    assert not evaluate_document(policy(statement), Request(root, "kms:Decrypt", key)).effect  # the condition fails
    assert not covers(statement, Request(root, "kms:CreateGrant", key))
    assert not covers(statement, Request(ROLE, "kms:Decrypt", key))  # another account
    assert not covers({**statement, "Resource": f"{key}-other"}, Request(root, "kms:Decrypt", key))
