import boto3


def test_moto(aws_env):
    iam = boto3.client("iam")
    iam.create_user(UserName="u1")
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["u1"]
    aws_env.reset()
    assert iam.list_users()["Users"] == []
