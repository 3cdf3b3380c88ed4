from tests.aws_stand_ins import access_portal, aws, moto_server  # noqa: F401
