"""The table and bucket come from template.yaml, and the models agree with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meter import RequestMeter
from stepwell.store import models
from stepwell.store.tables import TemplateError, create_from_template, load_template, resources

TEMPLATE = Path(__file__).resolve().parents[2] / "shared/stepwell/stack/template.yaml"


def table_of(template: dict[str, Any]) -> dict[str, Any]:
    (props,) = resources(template, "AWS::DynamoDB::Table").values()
    return props


def test_the_table_is_created_as_the_template_says(dynamodb: Any, tables: dict[str, str]) -> None:
    table = dynamodb.describe_table(TableName=tables["StepwellTable"])["Table"]
    wanted = table_of(load_template(TEMPLATE))
    assert table["KeySchema"] == wanted["KeySchema"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    for index in wanted["GlobalSecondaryIndexes"]:
        assert indexes[index["IndexName"]]["KeySchema"] == index["KeySchema"]
        assert indexes[index["IndexName"]]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    ttl = dynamodb.describe_time_to_live(TableName=tables["StepwellTable"])
    assert ttl["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": "expires_at",
    }
    backups = dynamodb.describe_continuous_backups(TableName=tables["StepwellTable"])
    pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"


def test_the_bucket_is_private_and_encrypted(s3: Any, tables: dict[str, str]) -> None:
    bucket = tables["PayloadBucket"]
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_the_models_use_the_keys_and_indexes_of_the_template() -> None:
    wanted = table_of(load_template(TEMPLATE))
    schema = models.Item._get_schema()

    def keys(schema: list[dict[str, str]]) -> dict[str, str]:
        return {k["KeyType"]: k["AttributeName"] for k in schema}

    assert keys(schema["key_schema"]) == keys(wanted["KeySchema"])
    assert sorted(schema["attribute_definitions"], key=str) == sorted(
        wanted["AttributeDefinitions"], key=str
    )
    assert {i["index_name"]: keys(i["key_schema"]) for i in schema["global_secondary_indexes"]} == {
        i["IndexName"]: keys(i["KeySchema"]) for i in wanted["GlobalSecondaryIndexes"]
    }


def test_cloudformation_tags_are_read_as_in_json_templates() -> None:
    template = load_template(TEMPLATE)
    outputs = template["Outputs"]
    assert outputs["TableName"]["Value"] == {"Ref": "StepwellTable"}
    assert outputs["TableArn"]["Value"] == {"Fn::GetAtt": ["StepwellTable", "Arn"]}


def test_naming_a_resource_the_template_lacks_is_an_error(dynamodb: Any, s3: Any) -> None:
    with pytest.raises(TemplateError, match="no table or bucket named Nope"):
        create_from_template(TEMPLATE, dynamodb, s3, {"Nope": "x"})


def test_the_meter_counts_requests_items_and_units(tables: dict[str, str], dynamodb: Any) -> None:
    meter = RequestMeter().attach(dynamodb)
    name = tables["StepwellTable"]
    item = {"pk": {"S": "X"}, "sk": {"S": "Y"}, "kind": {"S": "test"}, "blob": {"S": "b" * 3000}}
    dynamodb.put_item(TableName=name, Item=item)
    dynamodb.get_item(TableName=name, Key={"pk": {"S": "X"}, "sk": {"S": "Y"}})
    dynamodb.transact_write_items(
        TransactItems=[{"Put": {"TableName": name, "Item": {**item, "sk": {"S": "Z"}}}}]
    )
    reading = meter.reading()
    assert reading.dynamodb_calls == {"PutItem": 1, "GetItem": 1, "TransactWriteItems": 1}
    assert (reading.writes, reading.reads) == (2, 1)
    assert (reading.items_written, reading.items_read) == (2, 1)
    assert reading.write_units == 3 + 2 * 3  # 3 KB: 3 units, twice that in a transaction
    assert reading.read_units == 1
    meter.detach()
    dynamodb.get_item(TableName=name, Key={"pk": {"S": "X"}, "sk": {"S": "Y"}})
    assert meter.reading().reads == 1
