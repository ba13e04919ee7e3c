"""Domain logic: pure functions over canonical models. Never imports boto3."""
